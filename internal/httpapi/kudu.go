package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/ops"
)

// kuduDeployment is a deployment in Kudu's JSON shape.
type kuduDeployment struct {
	ID           string     `json:"id"`
	Status       int        `json:"status"`
	StatusText   string     `json:"status_text"`
	Author       string     `json:"author"`
	AuthorEmail  string     `json:"author_email"`
	Deployer     string     `json:"deployer"`
	Message      string     `json:"message"`
	ReceivedTime time.Time  `json:"received_time"`
	StartTime    time.Time  `json:"start_time"`
	EndTime      *time.Time `json:"end_time"`
	Complete     bool       `json:"complete"`
	Active       bool       `json:"active"`
	IsTemp       bool       `json:"is_temp"`
	IsReadonly   bool       `json:"is_readonly"`
	URL          string     `json:"url"`
	LogURL       string     `json:"log_url"`
	SiteName     string     `json:"site_name"`
}

func (s *Server) kuduRoutes() {
	s.mux.HandleFunc("/kudu/{app}/{slot}/api/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		base := "/kudu/" + r.PathValue("app") + "/" + r.PathValue("slot")
		s.kudu(w, r, r.PathValue("app"), r.PathValue("slot"), base)
	})
}

// scmHost resolves a Kudu host name <app>[-<slot>].scm.<domain>.
func (s *Server) scmHost(host string) (app, slot string, ok bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	label, ok := strings.CutSuffix(strings.ToLower(host), ".scm."+strings.ToLower(s.cfg.Domain))
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", "", false
	}
	return s.ops.ResolveLabel(label)
}

// kudu serves the Kudu deploy endpoints of one slot; base is the path prefix
// before /api.
func (s *Server) kudu(w http.ResponseWriter, r *http.Request, app, slot, base string) {
	who, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="hotswap"`)
		apierr.Write(w, r, s.log, hotswap.Errorf(hotswap.Unauthorized, "a valid token is required (HTTP Basic with the token as password, or Bearer)"))
		return
	}
	if r.Method != http.MethodGet && !allowed(who, deploy) {
		apierr.Write(w, r, s.log, hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not deploy", who.Name, who.Role))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, base)
	switch {
	case path == "/api/zipdeploy" && r.Method == http.MethodPost,
		path == "/api/publish" && r.Method == http.MethodPost:
		s.kuduDeploy(w, r, who.Name, app, slot, base)
	case path == "/api/deployments/latest" && r.Method == http.MethodGet:
		d, err := s.ops.LatestDeployment(r.Context(), app, slot)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		kd := s.kuduView(r, d, base)
		status := http.StatusOK
		if !kd.Complete {
			status = http.StatusAccepted
		}
		writeJSON(w, status, kd)
	case path == "/api/deployments" && r.Method == http.MethodGet:
		ds, err := s.ops.Deployments(r.Context(), app, slot)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]kuduDeployment, 0, len(ds))
		for _, d := range ds {
			out = append(out, s.kuduView(r, d, base))
		}
		writeJSON(w, http.StatusOK, out)
	case strings.HasPrefix(path, "/api/deployments/") && r.Method == http.MethodGet:
		d, err := s.ops.Deployment(r.Context(), app, strings.TrimPrefix(path, "/api/deployments/"))
		if err != nil || d.Slot != slot {
			if err == nil {
				err = hotswap.Errorf(hotswap.NotFound, "deployment not found in slot %s/%s", app, slot)
			}
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.kuduView(r, d, base))
	default:
		apierr.Write(w, r, s.log, hotswap.Errorf(hotswap.NotFound, "no Kudu endpoint %s %s (supported: POST /api/zipdeploy, GET /api/deployments[/latest|/{id}])", r.Method, path))
	}
}

func (s *Server) kuduDeploy(w http.ResponseWriter, r *http.Request, who, app, slot, base string) {
	// A declared size over the limit is refused before anything is read;
	// an undeclared one is cut off at the limit by the deploy.
	if limit := s.ops.MaxPackageBytes(); r.ContentLength > limit {
		s.fail(w, r, hotswap.Errorf(hotswap.TooLarge, "package is larger than the limit of %d bytes", limit))
		return
	}
	req := ops.DeployRequest{App: app, Slot: slot, Actor: who, Message: r.URL.Query().Get("message"), Package: r.Body}
	if req.Message == "" {
		req.Message = "Created via a push deployment"
	}
	var err error
	if req.Force, err = force(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if !req.Force {
		// Refused before the upload is read, not after.
		if err := s.ops.CheckHold(app, slot, "deploy"); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if strings.EqualFold(r.URL.Query().Get("isAsync"), "true") {
		d, _, err := s.ops.StartDeploy(r.Context(), req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Location", s.absURL(r, base+"/api/deployments/latest"))
		w.Header().Set("Scm-Deployment-Id", d.ID)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	res, err := s.ops.Deploy(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Scm-Deployment-Id", res.Deployment.ID)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) kuduView(r *http.Request, d hotswap.Deployment, base string) kuduDeployment {
	complete := d.Status == hotswap.DeploySuccess || d.Status == hotswap.DeployFailed
	k := kuduDeployment{
		ID: d.ID, Status: int(d.Status), StatusText: d.StatusText, Author: d.Author, Deployer: "hotswap",
		Message: d.Message, ReceivedTime: d.CreatedAt, StartTime: d.StartedAt, Complete: complete,
		URL: s.absURL(r, base+"/api/deployments/"+d.ID), SiteName: d.App,
	}
	if complete && !d.EndedAt.IsZero() {
		t := d.EndedAt
		k.EndTime = &t
	}
	if slot, err := s.ops.GetSlot(r.Context(), d.App, d.Slot); err == nil {
		k.Active = slot.DeploymentID == d.ID
	}
	return k
}

func (s *Server) absURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}
