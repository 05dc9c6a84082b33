package outbox_test

import (
	"crypto/rand"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
)

func TestEncodeChanges(t *testing.T) {
	t.Parallel()
	batch := func(n int, data func(i int) []byte) *pb.ChangeBatch {
		b := &pb.ChangeBatch{}
		for i := range n {
			b.Changes = append(b.Changes, &pb.Change{Kind: clarity.KindServiceUser, Op: clarity.OpCreated, Subject: "u" + strconv.Itoa(i), Data: data(i)})
		}
		return b
	}
	jsonData := func(i int) []byte {
		return []byte(`{"id":"u` + strconv.Itoa(i) + `","email":"user` + strconv.Itoa(i) + `@example.com","status":"active"}`)
	}
	randomData := func(int) []byte {
		b := make([]byte, 2048)
		_, _ = rand.Read(b)
		return b
	}
	tests := []struct {
		name         string
		batch        *pb.ChangeBatch
		wantEncoding string
	}{
		{"small stays as is", batch(3, jsonData), ""},
		{"large JSON is compressed", batch(500, jsonData), pipeline.EncodingS2},
		{"large noise is not", batch(20, randomData), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, encoding, err := outbox.EncodeChanges(tt.batch)
			if err != nil {
				t.Fatal(err)
			}
			if encoding != tt.wantEncoding {
				t.Errorf("got encoding %q, want %q", encoding, tt.wantEncoding)
			}
			plain, _ := proto.Marshal(tt.batch)
			if encoding == pipeline.EncodingS2 && len(body)*2 > len(plain) {
				t.Errorf("compressed to %d bytes of %d, want at most half", len(body), len(plain))
			}
			got, err := outbox.DecodeChanges(body, encoding)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.batch) {
				t.Errorf("decoded changes differ from the encoded ones")
			}
		})
	}
	body, _, _ := outbox.EncodeChanges(batch(500, jsonData))
	if _, err := outbox.DecodeChanges(body, "zstd"); err == nil {
		t.Error("unknown encoding: got no error")
	}
	if _, err := outbox.DecodeChanges(body[:len(body)/2], pipeline.EncodingS2); err == nil {
		t.Error("truncated S2 data: got no error")
	}
}
