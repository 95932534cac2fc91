package sqlite

import "context"

// PipelineIDsNamed returns the ids of the pipelines that are or were named
// name (a rename keeps the old name in the pipeline's versions), the one
// named so now first.
func (db *DB) PipelineIDsNamed(ctx context.Context, name string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT v.pipeline_id FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id
		WHERE v.name = ? GROUP BY v.pipeline_id ORDER BY MAX(p.name = ?) DESC, MAX(v.created_at) DESC`, name, name)
	if err != nil {
		return nil, wrap(err, "pipelines named %s", name)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(err, "pipelines named %s", name)
		}
		ids = append(ids, id)
	}
	return ids, wrap(rows.Err(), "pipelines named %s", name)
}
