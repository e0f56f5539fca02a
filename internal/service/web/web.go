// Package web holds the dashboard's templates, style sheet and its one
// script, embedded in the binary; package service renders and serves them.
// Pages are server-rendered and work without JavaScript; the script only
// turns a job page's refresh into live progress (Server-Sent Events).
package web

import "embed"

// Templates are html/template files: layout.html defines the page frame,
// each page defines "title" and "main".
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds the style sheet and the script, served under /static/.
//
//go:embed static/*
var Static embed.FS
