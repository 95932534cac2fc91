package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
)

// Wire shapes of docs/api.md that add to the domain types.

type appJSON struct {
	hotswap.App
	Slots []slotJSON `json:"slots"`
}

type slotJSON struct {
	hotswap.Slot
	HostName string `json:"hostName"`
	URL      string `json:"url"`
	State    string `json:"state"` // empty, starting, running, down, stopped or preview
	// AutoSwapTarget shadows hotswap.Slot's, if any, so the CLI reads the
	// wire field whatever the domain type holds.
	AutoSwapTarget string `json:"autoSwapTarget"`
}

type functionJSON struct {
	Name      string `json:"name"`
	Trigger   string `json:"trigger"`
	Runnable  bool   `json:"runnable"`
	Reason    string `json:"reason"`
	Disabled  bool   `json:"disabled"`
	InvokeURL string `json:"invokeUrl"`
}

type deployAnswer struct {
	Deployment hotswap.Deployment `json:"deployment"`
	URL        string             `json:"url"`
	// With an auto-swap target on the slot: the swap that ran after the
	// deploy, or why it failed (the deploy itself succeeded).
	AutoSwap      *swapResult `json:"autoSwap"`
	AutoSwapError string      `json:"autoSwapError"`
}

type logLine struct {
	Time   string `json:"time"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// call runs one API call. With -o json it prints the answer, indented, and
// returns printed true (out is still filled in as far as the answer decodes,
// for a command whose exit status depends on it); otherwise it decodes the
// answer into out.
func (x *cmdEnv) call(ctx context.Context, method, path string, body, out any) (printed bool, err error) {
	var raw json.RawMessage
	if err := x.client.do(ctx, method, path, body, &raw); err != nil {
		return false, err
	}
	if x.json {
		if out != nil && len(raw) > 0 {
			_ = json.Unmarshal(raw, out)
		}
		return true, x.printAnswer(raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return false, nil
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil // 204: nothing to print
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("server answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// withTimeout bounds a call that should answer quickly.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout)
}

// Apps

func appCreate(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var a appJSON
	if printed, err := x.call(ctx, http.MethodPost, "/api/v1/apps", map[string]string{"name": args[0]}, &a); printed || err != nil {
		return err
	}
	fmt.Fprintf(x.stdout, "created app %s\n", a.Name)
	for _, s := range a.Slots {
		fmt.Fprintf(x.stdout, "%s: %s\n", s.Name, s.URL)
	}
	return nil
}

func appList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Apps []appJSON `json:"apps"`
	}
	if printed, err := x.call(ctx, http.MethodGet, "/api/v1/apps", nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	if x.wide {
		fmt.Fprintln(tw, "NAME\tSLOTS\tCREATED\tURL")
	} else {
		fmt.Fprintln(tw, "NAME\tSLOTS\tCREATED")
	}
	for _, a := range ans.Apps {
		var names []string
		url := ""
		for _, s := range a.Slots {
			names = append(names, s.Name)
			if s.Name == hotswap.ProductionSlot {
				url = s.URL
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s", a.Name, orDash(strings.Join(names, ",")), fmtTime(a.CreatedAt))
		if x.wide {
			fmt.Fprintf(tw, "\t%s", orDash(url))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func appShow(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var a appJSON
	if printed, err := x.call(ctx, http.MethodGet, appPath(args[0]), nil, &a); printed || err != nil {
		return err
	}
	fmt.Fprintf(x.stdout, "app:      %s\ncreated:  %s\n\n", a.Name, fmtTime(a.CreatedAt))
	return printSlots(x.stdout, a.Slots, x.wide)
}

func appDelete(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if printed, err := x.call(ctx, http.MethodDelete, appPath(args[0]), nil, nil); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "deleted app %s\n", args[0])
	return err
}

// Slots

// printSlots prints a table of slots; wide adds their host names and
// creation times.
func printSlots(w io.Writer, slots []slotJSON, wide bool) error {
	tw := newTable(w)
	if wide {
		fmt.Fprintln(tw, "SLOT\tSTATE\tDEPLOYMENT\tAUTO-SWAP\tURL\tHOST\tCREATED")
	} else {
		fmt.Fprintln(tw, "SLOT\tSTATE\tDEPLOYMENT\tAUTO-SWAP\tURL")
	}
	for _, s := range slots {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", s.Name, orDash(hotswap.SlotStateText(s.State)), orDash(s.DeploymentID), orDash(s.AutoSwapTarget), orDash(s.URL))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s", orDash(s.HostName), fmtTime(s.CreatedAt))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func slotCreate(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	body := struct {
		Name              string `json:"name"`
		CloneSettingsFrom string `json:"cloneSettingsFrom,omitempty"`
	}{args[1], x.opts.cloneFrom}
	var s slotJSON
	if printed, err := x.call(ctx, http.MethodPost, appPath(args[0])+"/slots", body, &s); printed || err != nil {
		return err
	}
	cloned := ""
	if x.opts.cloneFrom != "" {
		cloned = " with the settings of " + x.opts.cloneFrom
	}
	_, err := fmt.Fprintf(x.stdout, "created slot %s/%s%s\n%s\n", args[0], s.Name, cloned, s.URL)
	return err
}

func slotList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Slots []slotJSON `json:"slots"`
	}
	if printed, err := x.call(ctx, http.MethodGet, appPath(args[0])+"/slots", nil, &ans); printed || err != nil {
		return err
	}
	return printSlots(x.stdout, ans.Slots, x.wide)
}

func slotDelete(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if printed, err := x.call(ctx, http.MethodDelete, slotPath(args[0], args[1]), nil, nil); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "deleted slot %s/%s\n", args[0], args[1])
	return err
}

// Deploy

// deploy uploads a .zip file, or a folder zipped into a temporary file, and
// waits, bounded by ctx only, until the slot serves it, printing the phases
// (progress.go). It checks the role, app and slot before the upload.
func deploy(ctx context.Context, x *cmdEnv, args []string) error {
	app, path, slot := args[0], args[1], x.opts.slot
	f, size, err := openPackage("deploy", path)
	if err != nil {
		return err
	}
	defer f.close()
	if err := checkDeploy(ctx, x, app, slot); err != nil {
		return err
	}

	p := slotPath(app, slot) + "/deploy"
	q := url.Values{}
	if x.opts.message != "" {
		q.Set("message", x.opts.message)
	}
	if x.opts.force {
		q.Set("force", "true")
	}
	if x.opts.noWait {
		q.Set("wait", "false")
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var ans deployAnswer
	prog := x.newProgress()
	defer prog.close()
	body := rawBody{r: prog.upload(f, size), size: size, contentType: "application/zip"}
	var printed, started bool
	if x.opts.noWait {
		printed, started, err = x.callNoWait(ctx, http.MethodPost, p, body, &ans, "deploy to "+app+"/"+slot)
	} else {
		printed, err = x.callStream(ctx, prog, http.MethodPost, p, body, &ans)
	}
	switch {
	case err != nil || started:
		return err
	case printed:
		if ans.AutoSwapError != "" { // the same exit status as in a table
			return reportAutoSwap(io.Discard, ans, app, slot)
		}
		return nil
	}
	if _, err := fmt.Fprintf(x.stdout, "deployed %s to %s/%s\n%s\n", ans.Deployment.ID, app, slot, ans.URL); err != nil {
		return err
	}
	return reportAutoSwap(x.stdout, ans, app, slot)
}

// pkgFile is a package to upload: a .zip file, or a temporary zip of a
// folder that close removes.
type pkgFile struct {
	*os.File
	temp bool
}

func (f pkgFile) close() {
	f.File.Close()
	if f.temp {
		os.Remove(f.Name())
	}
}

// openPackage opens path, a .zip file or a folder zipped into a temporary
// file, for upload and returns its size. op prefixes the errors.
func openPackage(op, path string) (pkgFile, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return pkgFile{}, 0, fmt.Errorf("%s: %w", op, err)
	}
	var f pkgFile
	switch {
	case fi.IsDir():
		tmp, err := os.CreateTemp("", "hotswap-"+op+"-*.zip")
		if err != nil {
			return pkgFile{}, 0, fmt.Errorf("%s: %w", op, err)
		}
		f = pkgFile{tmp, true}
		if err := artifact.ZipProject(path, f); err != nil {
			f.close()
			return pkgFile{}, 0, fmt.Errorf("%s: %w", op, err) // ZipDir names the folder
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.close()
			return pkgFile{}, 0, fmt.Errorf("zip %s: %w", path, err)
		}
	case fi.Mode().IsRegular() && strings.EqualFold(filepath.Ext(path), ".zip"):
		opened, err := os.Open(path)
		if err != nil {
			return pkgFile{}, 0, fmt.Errorf("%s: %w", op, err)
		}
		f = pkgFile{opened, false}
	default:
		return pkgFile{}, 0, fmt.Errorf("%s: %s is neither a folder nor a .zip file", op, path)
	}
	fi, err = f.Stat()
	if err != nil {
		f.close()
		return pkgFile{}, 0, fmt.Errorf("%s: %w", op, err)
	}
	return f, fi.Size(), nil
}

// Functions and logs

func funcURL(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var fn functionJSON
	p := slotPath(args[0], x.opts.slot) + "/functions/" + url.PathEscape(args[1])
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &fn); printed || err != nil {
		return err
	}
	// A URL that answers 404 is worse than none: say why instead.
	switch {
	case !fn.Runnable && fn.Reason != "":
		return fmt.Errorf("function %s is not runnable, so its URL would answer 404: %s", args[1], fn.Reason)
	case !fn.Runnable:
		return fmt.Errorf("function %s is not runnable, so its URL would answer 404", args[1])
	case fn.Disabled:
		return fmt.Errorf("function %s is disabled (app setting AzureWebJobs.%s.Disabled), so its URL answers 404", args[1], args[1])
	case fn.InvokeURL == "":
		return fmt.Errorf("function %s has no invoke URL", args[1])
	}
	_, err := fmt.Fprintln(x.stdout, fn.InvokeURL)
	return err
}

func slotLog(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if x.opts.tail < 0 {
		return &usageError{x.cmd, "--tail must not be negative"}
	}
	p := slotPath(args[0], x.opts.slot) + "/log"
	if x.opts.tail > 0 {
		p += "?tail=" + strconv.Itoa(x.opts.tail)
	}
	var ans struct {
		Lines []logLine `json:"lines"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	for _, l := range ans.Lines {
		if _, err := fmt.Fprintf(x.stdout, "%s %s %s\n", l.Time, l.Stream, l.Text); err != nil {
			return err
		}
	}
	return nil
}

// Keys

func printKeys(w io.Writer, keys []hotswap.Key) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "SCOPE\tFUNCTION\tNAME\tVALUE")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Scope, orDash(k.Function), k.Name, k.Value)
	}
	return tw.Flush()
}

func keysList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	p := slotPath(args[0], x.opts.slot) + "/keys"
	if x.opts.function != "" {
		p += "?" + url.Values{"function": {x.opts.function}}.Encode()
	}
	var ans struct {
		Keys []hotswap.Key `json:"keys"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	return printKeys(x.stdout, ans.Keys)
}

// keyPath returns the path of key name in the slot chosen by the options:
// the master key for "_master" or --master, a function key with --function,
// else a host key.
func keyPath(x *cmdEnv, app, name string) (string, error) {
	o := x.opts
	master := o.master || name == hotswap.MasterKeyName
	switch {
	case master && o.function != "":
		return "", &usageError{x.cmd, "the master key belongs to no function: drop --function"}
	case master && name != "" && name != hotswap.MasterKeyName:
		return "", &usageError{x.cmd, fmt.Sprintf("--master names the key: drop %q", name)}
	case master:
		return slotPath(app, o.slot) + "/keys/master", nil
	case o.function != "":
		return slotPath(app, o.slot) + "/keys/functions/" + url.PathEscape(o.function) + "/" + url.PathEscape(name), nil
	}
	return slotPath(app, o.slot) + "/keys/host/" + url.PathEscape(name), nil
}

func putKey(ctx context.Context, x *cmdEnv, path string, body any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var k hotswap.Key
	if printed, err := x.call(ctx, http.MethodPut, path, body, &k); printed || err != nil {
		return err
	}
	return printKeys(x.stdout, []hotswap.Key{k})
}

// keysSet takes APP NAME VALUE, or APP VALUE with --master.
func keysSet(ctx context.Context, x *cmdEnv, args []string) error {
	var name, value string
	switch {
	case len(args) == 3:
		name, value = args[1], args[2]
	case x.opts.master:
		value = args[1]
	default:
		return &usageError{x.cmd, "missing arguments"}
	}
	p, err := keyPath(x, args[0], name)
	if err != nil {
		return err
	}
	return putKey(ctx, x, p, map[string]string{"value": value})
}

// keysRenew takes APP NAME, or APP with --master.
func keysRenew(ctx context.Context, x *cmdEnv, args []string) error {
	var name string
	switch {
	case len(args) == 2:
		name = args[1]
	case !x.opts.master:
		return &usageError{x.cmd, "missing arguments"}
	}
	p, err := keyPath(x, args[0], name)
	if err != nil {
		return err
	}
	return putKey(ctx, x, p, struct{}{})
}

func keysDelete(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if args[1] == hotswap.MasterKeyName {
		return &usageError{x.cmd, "the master key cannot be deleted; renew it with: hotswap keys renew APP _master"}
	}
	p, err := keyPath(x, args[0], args[1])
	if err != nil {
		return err
	}
	if printed, err := x.call(ctx, http.MethodDelete, p, nil, nil); printed || err != nil {
		return err
	}
	what := "host key " + args[1]
	if x.opts.function != "" {
		what = "function key " + x.opts.function + "/" + args[1]
	}
	_, err = fmt.Fprintf(x.stdout, "deleted %s of %s/%s\n", what, args[0], x.opts.slot)
	return err
}

// Settings

type settingsPatch struct {
	Set   []hotswap.Setting `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

func printSettings(w io.Writer, settings []hotswap.Setting) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVALUE\tSLOT-SETTING")
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%s\t%t\n", s.Name, s.Value, s.Sticky)
	}
	return tw.Flush()
}

func settingsCall(ctx context.Context, x *cmdEnv, method, path string, body any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Settings []hotswap.Setting `json:"settings"`
	}
	call := x.call
	if method != http.MethodGet { // a change restarts the slot: show its phases
		call = func(ctx context.Context, method, path string, body, out any) (bool, error) {
			return x.callStream(ctx, x.newProgress(), method, path, body, out)
		}
	}
	if printed, err := call(ctx, method, path, body, &ans); printed || err != nil {
		return err
	}
	return printSettings(x.stdout, ans.Settings)
}

func settingsList(ctx context.Context, x *cmdEnv, args []string) error {
	return settingsCall(ctx, x, http.MethodGet, slotPath(args[0], x.opts.slot)+"/settings", nil)
}

func settingsSet(ctx context.Context, x *cmdEnv, args []string) error {
	var patch settingsPatch
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return &usageError{x.cmd, fmt.Sprintf("%q is not NAME=VALUE", a)}
		}
		patch.Set = append(patch.Set, hotswap.Setting{Name: name, Value: value, Sticky: x.opts.slotSetting})
	}
	return settingsCall(ctx, x, http.MethodPatch, slotPath(args[0], x.opts.slot)+"/settings", patch)
}

func settingsUnset(ctx context.Context, x *cmdEnv, args []string) error {
	patch := settingsPatch{Unset: args[1:]}
	return settingsCall(ctx, x, http.MethodPatch, slotPath(args[0], x.opts.slot)+"/settings", patch)
}
