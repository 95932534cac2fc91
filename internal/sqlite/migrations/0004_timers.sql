-- timer_status is the schedule monitor of timer-trigger functions, per slot
-- as on Azure: the schedule it was computed for, the last occurrence that
-- ran and the next one due. An occurrence whose next time passes while the
-- server is down runs once when it is back (IsPastDue).
CREATE TABLE timer_status (
	app        TEXT    NOT NULL,
	slot       TEXT    NOT NULL,
	function   TEXT    NOT NULL,
	schedule   TEXT    NOT NULL,
	last       INTEGER,
	next       INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (app, slot, function),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
) STRICT;
