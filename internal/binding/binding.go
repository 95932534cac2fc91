// Package binding writes the output bindings of an invocation (queue and
// blob outputs, through internal/azstorage) and checks, against a slot's
// app settings, that they can be written.
package binding

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
)

// Writer writes queue and blob outputs. The zero value is ready to use.
type Writer struct {
	// Now is the clock of {DateTime} in blob paths; nil is time.Now.
	Now func() time.Time
}

// Check returns why fn's outputs cannot be written, or its blob inputs
// read, with the app settings (a connection setting missing or invalid, a
// %setting% of a queue name or path not set), or nil. The error names the
// binding and never holds a setting's value.
func Check(fn *funcapp.Function, settings map[string]string) error {
	if err := CheckInputs(fn, settings); err != nil {
		return err
	}
	for _, o := range fn.Outputs {
		if _, err := azstorage.Resolve(settings, o.Connection); err != nil {
			return fmt.Errorf("binding %q (type %s): connection: %w", o.Name, o.Type, err)
		}
		if _, err := azstorage.ExpandSettings(target(o), settings); err != nil {
			return fmt.Errorf("binding %q (type %s): %w", o.Name, o.Type, err)
		}
	}
	return nil
}

// Reasons returns the functions of app whose outputs cannot be written, or
// inputs read, with the settings, with the reason (see Check); nil when
// there are none.
func Reasons(app *funcapp.App, settings map[string]string) map[string]string {
	if app == nil {
		return nil
	}
	var m map[string]string
	for _, f := range app.Functions {
		if !f.Runnable || len(f.Outputs) == 0 && len(f.Inputs) == 0 {
			continue
		}
		if err := Check(f, settings); err != nil {
			if m == nil {
				m = make(map[string]string)
			}
			m[f.Name] = err.Error()
		}
	}
	return m
}

// WriteOutputs writes each queue and blob output of fn that res has a value
// for (null or absent writes nothing), in the order of function.json. vals
// are the names bound by the trigger, for {name} expressions in queue names
// and blob paths. It stops at the first failure, whose error names the
// binding; the outputs written before it stay written.
func (w *Writer) WriteOutputs(ctx context.Context, app *funcapp.App, settings map[string]string, fn *funcapp.Function, res invoke.Result, vals map[string]string) error {
	now := time.Now
	if w != nil && w.Now != nil {
		now = w.Now
	}
	b64 := true
	if app != nil && app.Host != nil {
		b64 = app.Host.Queues.Base64
	}
	for _, o := range fn.Outputs {
		v := res.Output(o.Name)
		if invoke.Null(v) {
			continue
		}
		if err := write(ctx, o, v, settings, vals, now(), b64); err != nil {
			return fmt.Errorf("output binding %q (type %s): %w", o.Name, o.Type, err)
		}
	}
	return nil
}

func write(ctx context.Context, o funcapp.Output, v json.RawMessage, settings, vals map[string]string, now time.Time, b64 bool) error {
	acct, err := azstorage.Resolve(settings, o.Connection)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	t, err := azstorage.ExpandSettings(target(o), settings)
	if err != nil {
		return err
	}
	t, err = azstorage.Expand(t, vals, now)
	if err != nil {
		return err
	}
	if o.Type == funcapp.OutputQueue {
		return azstorage.WriteQueue(ctx, acct, strings.ToLower(t), v, b64)
	}
	return azstorage.WriteBlob(ctx, acct, t, v)
}

// target is the queue name or blob path of o, as written.
func target(o funcapp.Output) string {
	if o.Type == funcapp.OutputQueue {
		return o.Queue
	}
	return o.Path
}
