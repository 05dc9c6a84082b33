package zoomtest

import (
	"slices"
	"strconv"
	"strings"
)

// ExpectedEnrichment computes the enrichment attributes of an organisation,
// from the record definitions and without the connector's code: for each
// user with an id whose invitation is not pending, what GET /users/{userId}
// gives of login_types (comma-separated, ascending, each type once),
// language, job_title, location, company, manager and cost_center, each
// when not empty. They come sorted by key. Expected and these together are
// the records of a connector with enrichment on once every user was read.
func ExpectedEnrichment(org *Org) []Record {
	var out []Record
	for _, u := range org.Users {
		if u.ID == "" || u.Status == StatusPending {
			continue
		}
		attr := func(name, value string) {
			if value == "" {
				return
			}
			out = append(out, Record{Kind: "service_user_attribute", Key: u.ID + "|" + name,
				Data: map[string]any{"user_id": u.ID, "name": name, "value": value}})
		}
		types := slices.Clone(u.LoginTypes)
		slices.Sort(types)
		types = slices.Compact(types)
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = strconv.Itoa(t)
		}
		attr("login_types", strings.Join(names, ","))
		attr("language", u.Language)
		attr("job_title", u.JobTitle)
		attr("location", u.Location)
		attr("company", u.Company)
		attr("manager", u.Manager)
		attr("cost_center", u.CostCenter)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out
}
