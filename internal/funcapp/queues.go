package funcapp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// QueueOptions are host.json extensions.queues: how queueTrigger functions
// poll, with Azure's defaults (see Queues).
type QueueOptions struct {
	BatchSize          int           // messages fetched at once, 1..32; default 16
	NewBatchThreshold  int           // fetch again when at most this many run; default BatchSize/2
	MaxPollingInterval time.Duration // longest wait between polls of an idle queue; default 1m, at least 100ms
	VisibilityTimeout  time.Duration // a failed message is visible again after this; default 0
	MaxDequeueCount    int           // tries before a message moves to <queue>-poison; default 5
	Base64             bool          // messageEncoding "base64" (the default); false for "none"
}

// DefaultQueueOptions returns Azure's defaults for extensions.queues.
func DefaultQueueOptions() QueueOptions {
	return QueueOptions{BatchSize: 16, NewBatchThreshold: 8, MaxPollingInterval: time.Minute, MaxDequeueCount: 5, Base64: true}
}

type queuesJSON struct {
	BatchSize          *int            `json:"batchSize"`
	NewBatchThreshold  *int            `json:"newBatchThreshold"`
	MaxPollingInterval json.RawMessage `json:"maxPollingInterval"`
	VisibilityTimeout  json.RawMessage `json:"visibilityTimeout"`
	MaxDequeueCount    *int            `json:"maxDequeueCount"`
	MessageEncoding    *string         `json:"messageEncoding"`
}

// parseQueues validates extensions.queues. Errors name the field.
func parseQueues(j *queuesJSON) (QueueOptions, error) {
	o := DefaultQueueOptions()
	if j == nil {
		return o, nil
	}
	const at = "extensions.queues."
	if j.BatchSize != nil {
		if *j.BatchSize < 1 || *j.BatchSize > 32 {
			return o, fmt.Errorf(at+"batchSize %d is not between 1 and 32", *j.BatchSize)
		}
		o.BatchSize = *j.BatchSize
	}
	o.NewBatchThreshold = o.BatchSize / 2
	if j.NewBatchThreshold != nil {
		if *j.NewBatchThreshold < 0 {
			return o, fmt.Errorf(at+"newBatchThreshold %d is negative", *j.NewBatchThreshold)
		}
		o.NewBatchThreshold = *j.NewBatchThreshold
	}
	if len(j.MaxPollingInterval) > 0 {
		d, err := parseTimeSpan(j.MaxPollingInterval, time.Millisecond)
		if err != nil {
			return o, fmt.Errorf(at+"maxPollingInterval %s", err)
		}
		if d < 100*time.Millisecond {
			return o, fmt.Errorf(at+"maxPollingInterval %s is less than 100ms", d)
		}
		o.MaxPollingInterval = d
	}
	if len(j.VisibilityTimeout) > 0 {
		d, err := parseTimeSpan(j.VisibilityTimeout, time.Second)
		if err != nil {
			return o, fmt.Errorf(at+"visibilityTimeout %s", err)
		}
		if d < 0 || d > 7*24*time.Hour {
			return o, fmt.Errorf(at+"visibilityTimeout %s is not between 0 and 7 days", d)
		}
		o.VisibilityTimeout = d
	}
	if j.MaxDequeueCount != nil {
		if *j.MaxDequeueCount < 1 {
			return o, fmt.Errorf(at+"maxDequeueCount %d is less than 1", *j.MaxDequeueCount)
		}
		o.MaxDequeueCount = *j.MaxDequeueCount
	}
	if j.MessageEncoding != nil {
		switch strings.ToLower(*j.MessageEncoding) {
		case "base64":
			o.Base64 = true
		case "none":
			o.Base64 = false
		default:
			return o, fmt.Errorf(at+"messageEncoding %q is not base64 or none", *j.MessageEncoding)
		}
	}
	return o, nil
}

// parseTimeSpan reads a .NET TimeSpan as host.json writes it: "hh:mm:ss",
// "d.hh:mm:ss" or "hh:mm:ss.fff"; a bare number counts in unit.
func parseTimeSpan(raw json.RawMessage, unit time.Duration) (time.Duration, error) {
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return time.Duration(n * float64(unit)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s is not a time span such as \"00:00:30\"", raw)
	}
	bad := fmt.Errorf("%q is not a time span such as \"00:00:30\"", s)
	t := strings.TrimSpace(s)
	days := 0
	parts := strings.Split(t, ":")
	if len(parts) != 3 {
		return 0, bad
	}
	if d, h, ok := strings.Cut(parts[0], "."); ok {
		v, err := strconv.Atoi(d)
		if err != nil || v < 0 {
			return 0, bad
		}
		days, parts[0] = v, h
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, bad
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), nil
}
