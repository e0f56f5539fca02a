package testsrv

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestS3(t *testing.T) {
	s := StartS3(t)
	a, b := s.NewBucket(t), s.NewBucket(t)
	if a == b {
		t.Fatalf("NewBucket returned %s twice", a)
	}
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.PutObject(ctx, a, "x/y", bytes.NewReader([]byte("hi")), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v\nversitygw log:\n%s", err, s.Log())
	}
	info, err := c.StatObject(ctx, a, "x/y", minio.StatObjectOptions{})
	if err != nil || info.Size != 2 {
		t.Fatalf("stat = %+v, %v", info, err)
	}
}
