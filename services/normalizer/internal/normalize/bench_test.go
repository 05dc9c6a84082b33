package normalize

import (
	"fmt"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// benchUsersBody is a GET /users page of n users shaped like a real
// account's: a few groups, a role, most fields set, two custom attributes.
func benchUsersBody(n int) string {
	var sb strings.Builder
	sb.WriteString(`{"next_page_token":"tok","page_count":334,"page_number":1,"page_size":300,"total_records":100000,"users":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"z8dsdsdsdsdsd%05d","email":"user.%05d@Example.com","first_name":"Zoë","last_name":"Müller-%d",`+
			`"display_name":"Zoë Müller %d","type":%d,"pmi":3542471135,"timezone":"Europe/Berlin","verified":1,"dept":"Engineering",`+
			`"user_created_at":"2019-06-01T07:58:03Z","created_at":"2019-06-01T07:58:03Z","last_login_time":"2024-03-25T05:40:55Z",`+
			`"last_client_version":"5.9.1.1234(mac)","group_ids":["g%d","g%d","gAll"],"im_group_ids":["im1"],"role_id":"%d",`+
			`"status":"active","language":"en-US","employee_unique_id":"E%05d",`+
			`"custom_attributes":[{"key":"cbf_cost","name":"Cost center","value":"CC-%d"},{"key":"cbf_site","name":"Site","value":"Berlin"}]}`,
			i, i, i, i, 1+i%2, i%10, i%7+10, i%3, i, i%50)
	}
	sb.WriteString(`]}`)
	return sb.String()
}

func BenchmarkUsersPage300(b *testing.B) {
	body := []byte(benchUsersBody(300))
	p := &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_ACTIVE}, FetchedAtMs: 1, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var records int
	for b.Loop() {
		batch, err := Page(p)
		if err != nil {
			b.Fatal(err)
		}
		records = len(batch.GetRecords())
	}
	b.ReportMetric(float64(records), "records/page")
}
