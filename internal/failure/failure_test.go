package failure

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// TestCode: a wrapped library error gets its code and advice; an unknown
// one the generic code and no advice; every code in the table has advice.
func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("back up blog: connect: %w", ssh.ErrLogin), "ssh_login"},
		{fmt.Errorf("back up blog: %w", site.ErrDBUnreachable), "database_unreachable"},
		{fmt.Errorf("open: %w", repository.ErrWrongPassword), "wrong_password"},
		{errors.New("something else"), Generic},
	} {
		r := ReportOf(c.err, "")
		if r.Code != c.code || r.Detail != c.err.Error() || (r.Advice == "") != (c.code == Generic) {
			t.Errorf("ReportOf(%v) = %+v, want code %s", c.err, r, c.code)
		}
	}
	for _, c := range codes {
		if Advice(c.code) == "" {
			t.Errorf("code %s has no advice", c.code)
		}
	}
	if r := ReportOf(errors.New("x"), "usage"); r.Code != "usage" {
		t.Errorf("a given code is kept: %+v", r)
	}
}
