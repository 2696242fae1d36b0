package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/ut1import"
)

// PublishRequest says why (required: every version is attributable).
type PublishRequest struct {
	Comment string `json:"comment"`
	// Force publishes even when the content did not change.
	Force bool `json:"force,omitempty"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	var req PublishRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	req.Comment = strings.TrimSpace(req.Comment)
	if req.Comment == "" || len(req.Comment) > 2000 {
		return Errorf("validation", "comment est requis (2000 octets au plus) : dites pourquoi vous publiez")
	}
	v, err := s.pub.Publish(r.Context(), actor(r), req.Comment, req.Force)
	if errors.Is(err, publish.ErrUnchanged) {
		return Errorf("nothing-to-publish", "le brouillon est identique à la version %d (force: true pour publier quand même)", s.pub.Head().Serial)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) error {
	serial, err := pathUint(r, "serial")
	if err != nil {
		return err
	}
	var req PublishRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	if h := s.pub.Head(); serial >= h.Serial {
		return Errorf("validation", "on ne revient qu'à une version antérieure à la %d", h.Serial)
	}
	v, err := s.pub.Rollback(r.Context(), actor(r), serial, strings.TrimSpace(req.Comment))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	q := p
	q.Limit++
	vs, err := s.st.Versions(r.Context(), q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pageOf(vs, p, func(v store.Version) string { return strconv.FormatUint(v.Serial, 10) }))
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	serial, err := pathUint(r, "serial")
	if err != nil {
		return err
	}
	v, err := s.st.Version(r.Context(), serial)
	if err != nil {
		return err
	}
	v.Manifest, v.Policy = nil, nil
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) versionSource(w http.ResponseWriter, r *http.Request) error {
	serial, err := pathUint(r, "serial")
	if err != nil {
		return err
	}
	v, err := s.st.Version(r.Context(), serial)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(v.Policy)
	return nil
}

func (s *Server) versionBundle(w http.ResponseWriter, r *http.Request) error {
	serial, err := pathUint(r, "serial")
	if err != nil {
		return err
	}
	b, err := s.pub.Bundle(r.Context(), serial)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="vigie-`+strconv.FormatUint(serial, 10)+`.bundle"`)
	b.ServeHTTP(w, r)
	return nil
}

// ImportRequest names the UT1 tarball to import (https only).
type ImportRequest struct {
	URL string `json:"url"`
	// MD5URL is the checksum file (default: MD5SUM.LST beside the tarball).
	MD5URL string `json:"md5_url,omitempty"`
}

func (s *Server) importUT1(w http.ResponseWriter, r *http.Request) error {
	var req ImportRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	// The API downloads only: reading a server path on request would let
	// an account probe the control plane's disk. The CLI imports files.
	if !strings.HasPrefix(req.URL, "https://") && !strings.HasPrefix(req.URL, "http://") {
		return Errorf("validation", "url doit commencer par https:// (ou http://, avec le MD5 publié)")
	}
	if req.MD5URL != "" && !strings.HasPrefix(req.MD5URL, "https://") && !strings.HasPrefix(req.MD5URL, "http://") {
		return Errorf("validation", "md5_url doit être une adresse http(s)://")
	}
	res, err := ut1import.Run(r.Context(), s.st, ut1import.Options{Source: req.URL, MD5: req.MD5URL, Client: s.cfg.HTTPClient,
		DataDir: s.cfg.DataDir, Now: s.now}, actor(r), s.now())
	if err != nil {
		p := Errorf("upstream", "%v", err)
		p.cause = err
		return p
	}
	return writeJSON(w, http.StatusCreated, res)
}
