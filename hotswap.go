// Package hotswap holds the domain of the hotswap function platform: apps,
// slots, deployments, settings and keys, their validation, and the error type
// every other package returns. It imports only the standard library.
package hotswap

import (
	"strconv"
	"strings"
	"time"
)

// ProductionSlot is the name of the slot every app has.
const ProductionSlot = "production"

// App is a function app. Its name is a DNS label.
type App struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Slot is a long-lived named environment of an app with its own host name,
// keys and settings, pointing at the deployment it serves.
type Slot struct {
	App          string    `json:"app"`
	Name         string    `json:"name"`
	DeploymentID string    `json:"deploymentId,omitempty"` // empty: nothing deployed yet
	CreatedAt    time.Time `json:"createdAt"`
	// AutoSwapTarget is the slot this one swaps into after each successful
	// deploy; empty when auto swap is off.
	AutoSwapTarget string `json:"autoSwapTarget,omitempty"`
}

// MaxDeploymentID bounds a deployment id a request names (the ids hotswap
// makes are about 30 bytes), so a longer one is refused before it is
// compared or echoed in an error.
const MaxDeploymentID = 100

// A slot's state, as the API reports it.
const (
	SlotEmpty   = "empty"   // nothing deployed yet
	SlotRunning = "running" // its handlers answer
	SlotIdle    = "idle"    // scaled to zero: its next request starts its handlers
	SlotDown    = "down"    // its handlers are not answering now
	SlotStopped = "stopped" // a deployment, but no handler processes on this node
	SlotPreview = "preview" // the source of a swap with preview, until it is completed or cancelled
)

// SlotStateText is a slot's state as people read it: SlotIdle says what it
// means.
func SlotStateText(state string) string {
	if state == SlotIdle {
		return "idle (scaled to zero)"
	}
	return state
}

// DeploymentStatus follows the Kudu numbering so the Kudu API can report it as is.
type DeploymentStatus int

// Kudu deployment statuses.
const (
	DeployPending   DeploymentStatus = 0
	DeployBuilding  DeploymentStatus = 1
	DeployDeploying DeploymentStatus = 2
	DeployFailed    DeploymentStatus = 3
	DeploySuccess   DeploymentStatus = 4
)

func (s DeploymentStatus) String() string {
	switch s {
	case DeployPending:
		return "pending"
	case DeployBuilding:
		return "building"
	case DeployDeploying:
		return "deploying"
	case DeployFailed:
		return "failed"
	case DeploySuccess:
		return "success"
	}
	return "unknown"
}

// MarshalJSON writes the status by name ("success"), as every JSON answer
// of the control-plane API does; the Kudu API writes the number itself.
func (s DeploymentStatus) MarshalJSON() ([]byte, error) {
	return []byte(`"` + s.String() + `"`), nil
}

// UnmarshalJSON reads a status name, or a Kudu number as older servers
// wrote it.
func (s *DeploymentStatus) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil // as encoding/json does for other types
	}
	text := strings.Trim(string(data), `"`)
	for st := DeployPending; st <= DeploySuccess; st++ {
		if text == st.String() || text == strconv.Itoa(int(st)) {
			*s = st
			return nil
		}
	}
	return Errorf(Invalid, "deployment status %s: want pending, building, deploying, failed or success", data)
}

// Deployment is one validated package deployed to an app: immutable once
// succeeded. Digest is the sha256 of the zip, which names its stored content.
type Deployment struct {
	ID         string           `json:"id"`
	App        string           `json:"app"`
	Slot       string           `json:"slot"` // the slot it was deployed to
	Digest     string           `json:"digest"`
	Author     string           `json:"author"`
	Message    string           `json:"message"`
	Status     DeploymentStatus `json:"status"`
	StatusText string           `json:"statusText"`
	CreatedAt  time.Time        `json:"createdAt"`
	StartedAt  time.Time        `json:"startedAt,omitzero"`
	EndedAt    time.Time        `json:"endedAt,omitzero"` // zero while it runs
}

// Setting is an app setting of one slot, given to the handler process as an
// environment variable. A sticky setting (slot setting) stays with its slot on
// swap; the others travel with the content.
type Setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Sticky bool   `json:"slotSetting"`
}

// Key scopes.
const (
	ScopeMaster   = "master"
	ScopeHost     = "host"
	ScopeFunction = "function"
)

// MasterKeyName is the name of the master key, as on Azure.
const MasterKeyName = "_master"

// Key is a function access key of one slot.
type Key struct {
	Scope    string `json:"scope"`              // master, host or function
	Function string `json:"function,omitempty"` // for function keys
	Name     string `json:"name"`
	Value    string `json:"value"`
}

// HostName returns the host name of an app's slot under domain:
// <app>.<domain> for production, <app>-<slot>.<domain> otherwise.
func HostName(app, slot, domain string) string {
	return HostLabel(app, slot) + "." + domain
}

// HostLabel returns the first DNS label of a slot's host name.
func HostLabel(app, slot string) string {
	if slot == ProductionSlot {
		return app
	}
	return app + "-" + slot
}

// ValidateName checks that name is a DNS label usable as an app or slot name:
// 1 to 63 characters of lowercase letters, digits and hyphens, starting with a
// letter and not ending with a hyphen.
func ValidateName(what, name string) error {
	if name == "" {
		return Errorf(Invalid, "%s name is empty", what)
	}
	if len(name) > 63 {
		return Errorf(Invalid, "%s name %q is longer than 63 characters", what, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' || c == '-':
			if i == 0 {
				return Errorf(Invalid, "%s name %q must start with a lowercase letter", what, name)
			}
		default:
			return Errorf(Invalid, "%s name %q: character %q is not allowed (use a-z, 0-9 and -)", what, name, c)
		}
	}
	if strings.HasSuffix(name, "-") {
		return Errorf(Invalid, "%s name %q must not end with a hyphen", what, name)
	}
	return nil
}

// ValidateSettingName checks an app setting name: an environment variable
// name without '=' or NUL, at most 256 bytes. Dots are allowed, as in
// AzureWebJobs.<function>.Disabled.
func ValidateSettingName(name string) error {
	if name == "" {
		return Errorf(Invalid, "setting name is empty")
	}
	if len(name) > 256 {
		return Errorf(Invalid, "setting name %.20q... is longer than 256 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c == '.' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0
		if !ok {
			return Errorf(Invalid, "setting name %q: character %q is not allowed (use letters, digits, _ . -, not starting with a digit)", name, c)
		}
	}
	return nil
}

// ValidateSettingValue checks an app setting value: no NUL byte, at most 64 KiB.
func ValidateSettingValue(name, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return Errorf(Invalid, "setting %s: value contains a NUL byte", name)
	}
	if len(value) > 64<<10 {
		return Errorf(Invalid, "setting %s: value is longer than 64 KiB", name)
	}
	return nil
}

// ValidateKeyName checks a key name: 1 to 128 of letters, digits, _ and -.
func ValidateKeyName(name string) error {
	if name == "" || len(name) > 128 {
		return Errorf(Invalid, "key name must be 1 to 128 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return Errorf(Invalid, "key name %q: character %q is not allowed (use letters, digits, _ and -)", name, c)
		}
	}
	return nil
}

// ValidateKeyValue checks a key value set by a user: 16 to 256 printable ASCII
// characters without spaces, so it survives a header and a query string.
func ValidateKeyValue(value string) error {
	if len(value) < 16 || len(value) > 256 {
		return Errorf(Invalid, "key value must be 16 to 256 characters")
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c <= ' ' || c >= 0x7f || c == '&' || c == '#' || c == '?' || c == '%' || c == '+' {
			return Errorf(Invalid, "key value: character %q is not allowed", c)
		}
	}
	return nil
}

// ValidateStoredKey checks the scope, function and name of a key a store
// is asked to keep, and that it has a value. The value itself is not
// checked with ValidateKeyValue: generated keys are trusted, and values a
// user sets are the API's to validate. Both stores use it.
func ValidateStoredKey(k Key) error {
	switch k.Scope {
	case ScopeMaster, ScopeHost:
		if k.Function != "" {
			return Errorf(Invalid, "a %s key has no function", k.Scope)
		}
	case ScopeFunction:
		if k.Function == "" {
			return Errorf(Invalid, "function key %q has no function", k.Name)
		}
	default:
		return Errorf(Invalid, "key scope %q is not master, host or function", k.Scope)
	}
	if err := ValidateKeyName(k.Name); err != nil {
		return err
	}
	if k.Value == "" {
		return Errorf(Invalid, "key %q has no value", k.Name)
	}
	return nil
}
