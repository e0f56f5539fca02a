package service

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/failure"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// A failure's code is its identity for grouping, alerts and the API: the
// same facts the CLI turns into flag advice, said as data (package failure,
// shared with the CLI's --json errors).

// errorCode returns the code of err's first known cause ("error" if none).
func errorCode(err error) string { return failure.Code(err) }

// adviceFor returns what to do about a failure with code.
func adviceFor(code string) string {
	switch code {
	case "site_not_found":
		return "The site was removed from sitevault."
	}
	return failure.Advice(code)
}

// jobAdvice is adviceFor, with a general hint for failures without one.
func jobAdvice(code string) string {
	if a := adviceFor(code); a != "" {
		return a
	}
	return "See the job's error in the sitevault dashboard or with `sitevault jobs show ID`, fix what it names, then run a backup by hand to check."
}

// problem is an RFC 9457 problem document: the API's error body.
type problem struct {
	Type   string `json:"type"`   // a URI naming the problem kind
	Title  string `json:"title"`  // the kind in words
	Status int    `json:"status"` // the HTTP status
	Detail string `json:"detail"` // this occurrence
	// Code is the stable code of the failure (as jobs' error_code).
	Code   string `json:"code"`
	Advice string `json:"advice,omitempty"`
	// Extensions of some problems.
	Fingerprint string            `json:"fingerprint,omitempty"` // host_key_unknown
	Errors      map[string]string `json:"errors,omitempty"`      // invalid fields
}

// writeProblem writes a problem for err (status 0: chosen from err).
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	p := problem{Type: "https://sitevault.dev/problems/" + code, Title: titleFor(code), Status: status, Detail: detail,
		Code: code, Advice: adviceFor(code)}
	writeProblemDoc(w, p)
}

func writeProblemDoc(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func titleFor(code string) string {
	switch code {
	case "unauthorized":
		return "Sign in or give an API token"
	case "forbidden":
		return "Your role does not allow this"
	case "not_found", "site_not_found", "point_not_found", "job_not_found":
		return "Not found"
	case "bad_request", "invalid":
		return "The request is not valid"
	case "conflict", "exists":
		return "It exists already"
	case "too_many_requests":
		return "Too many attempts"
	}
	return "The request failed"
}

// errorProblem maps a library error to a status and code.
func errorProblem(w http.ResponseWriter, err error) {
	var je *jobError
	code := errorCode(err)
	if errors.As(err, &je) {
		code = je.code
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, catalog.ErrSiteNotFound):
		status, code = http.StatusNotFound, "site_not_found"
	case errors.Is(err, catalog.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, catalog.ErrLastOwner):
		status, code = http.StatusConflict, "last_owner"
	case errors.Is(err, catalog.ErrSiteExists), errors.Is(err, catalog.ErrExists):
		status, code = http.StatusConflict, "exists"
	case errors.Is(err, sitevault.ErrInvalid):
		status, code = http.StatusUnprocessableEntity, "invalid"
	case errors.Is(err, point.ErrNoPoint), errors.Is(err, point.ErrBadRef), errors.Is(err, point.ErrOtherSite), errors.Is(err, point.ErrAmbiguous):
		status, code = http.StatusNotFound, "point_not_found"
	case code == "repository_damaged", code == "wrong_password", code == "no_repository":
		// The service's own repository: not the request's fault.
	case code != "error":
		status = http.StatusUnprocessableEntity
	}
	writeProblem(w, status, code, err.Error())
}
