// Package apiclient talks to a running `sitevault serve` over its HTTP API
// (docs/openapi.yaml): the CLI's --server mode, scripts and tests. Errors
// the service answers with are *Problem values carrying the same code and
// advice as the service's problem documents.
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// Client is a client of one service, authenticated by an API token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the service at base (http[s]://host:port) that
// sends token ("svt_…") with every request.
func New(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("service URL %q: give http://host:port or https://host", base)
	}
	if u.User != nil {
		return nil, fmt.Errorf("service URL %s: credentials do not belong in the URL; give an API token", u.Redacted())
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 0}}, nil
}

// Problem is an error the service answered with (RFC 9457).
type Problem struct {
	Type        string            `json:"type"`
	Title       string            `json:"title"`
	Status      int               `json:"status"`
	Detail      string            `json:"detail"`
	Code        string            `json:"code"`
	Advice      string            `json:"advice,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Errors      map[string]string `json:"errors,omitempty"`
}

func (p *Problem) Error() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if p.Advice != "" {
		msg += "; " + p.Advice
	}
	return fmt.Sprintf("service: %s (%d %s)", msg, p.Status, p.Code)
}

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the service at %s: %w; check --server and that `sitevault serve` runs", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		p := &Problem{Status: resp.StatusCode, Title: resp.Status}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, p) != nil || p.Code == "" {
			p.Code, p.Detail = "http_error", strings.TrimSpace(string(b))
		}
		return nil, p
	}
	return resp, nil
}

// Do sends a request (body encoded as JSON unless nil) and decodes the
// JSON answer into out (unless nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("service: %s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

// Enqueue posts to a job-creating route and returns the queued job.
func (c *Client) Enqueue(ctx context.Context, path string, body any) (*sitevault.Job, error) {
	var j sitevault.Job
	if err := c.Do(ctx, "POST", path, body, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Follow reads a job's progress events until it ends, calling progress
// for each; it returns the ended job. A dropped stream is opened again.
func (c *Client) Follow(ctx context.Context, id int64, progress func(state sitevault.JobState, p sitevault.Progress)) (*sitevault.Job, error) {
	for attempt := 0; ; attempt++ {
		j, err := c.follow(ctx, id, progress)
		if err == nil || ctx.Err() != nil || attempt >= 5 {
			return j, err
		}
		if _, ok := err.(*Problem); ok {
			return nil, err
		}
		time.Sleep(time.Second)
	}
}

func (c *Client) follow(ctx context.Context, id int64, progress func(sitevault.JobState, sitevault.Progress)) (*sitevault.Job, error) {
	resp, err := c.request(ctx, "GET", fmt.Sprintf("/api/v1/jobs/%d/events", id), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch event {
			case "end":
				var j sitevault.Job
				if err := json.Unmarshal(data, &j); err != nil {
					return nil, err
				}
				return &j, nil
			case "progress":
				var p struct {
					State    sitevault.JobState `json:"state"`
					Progress sitevault.Progress `json:"progress"`
				}
				if json.Unmarshal(data, &p) == nil && progress != nil {
					progress(p.State, p.Progress)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.ErrUnexpectedEOF
}

// Fetch downloads url (a download link) into w.
func (c *Client) Fetch(ctx context.Context, link string, w io.Writer) (int64, error) {
	if !strings.HasPrefix(link, c.base+"/") {
		return 0, fmt.Errorf("download link %q is not on the service %s", link, c.base)
	}
	resp, err := c.request(ctx, "GET", link, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
