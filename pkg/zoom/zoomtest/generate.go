package zoomtest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Size says how large an organisation Generate makes and how it is mixed.
// Fractions are of Users; zero fractions take the defaults noted.
type Size struct {
	Users  int // including the owner; at least 1
	Groups int
	// Roles is the number of roles including the three default ones (Owner,
	// Admin, Member); values below 3 still give the three defaults.
	Roles int

	InactiveFraction        float64 // default 0.08
	PendingFraction         float64 // default 0.04
	CustomAttributeFraction float64 // users with custom attributes; default 0.3
}

// DefaultSize is a mid-sized account, handy for demos.
var DefaultSize = Size{Users: 5000, Groups: 100, Roles: 10}

// genEpoch anchors generated timestamps so that Generate is deterministic and
// does not depend on the wall clock.
var genEpoch = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

// Generate makes a realistic organisation from seed, deterministically: the
// same seed and size give the same organisation, byte for byte.
//
// What it contains, on purpose, because real accounts do: names with accents,
// CJK and other scripts; users missing optional fields (names, department,
// timezone, user_created_at, login times); emails in mixed case; users in 0 to
// 4 groups; the default roles "0" (exactly one Owner), "1", "2" and custom
// roles; types 1, 2 and 4 with a few 99 and 3; groups with 0 to 3 admins who
// are users of the account, sometimes written in another case, and a few
// admins whose email matches no user; custom attributes on some users, a few
// with empty values.
func Generate(seed int64, size Size) *Org {
	if size.Users < 1 {
		size.Users = 1
	}
	if size.Roles < 3 {
		size.Roles = 3
	}
	if size.InactiveFraction == 0 {
		size.InactiveFraction = 0.08
	}
	if size.PendingFraction == 0 {
		size.PendingFraction = 0.04
	}
	if size.CustomAttributeFraction == 0 {
		size.CustomAttributeFraction = 0.3
	}
	g := newGen(seed)
	org := &Org{AccountID: g.id()}

	org.Roles = []Role{
		{ID: RoleOwner, Name: "Owner", Description: "Account owner has full privileges to access and manage a Zoom account.", Type: "common"},
		{ID: RoleAdmin, Name: "Admin", Description: "Admins have wide-ranging privileges to manage users and settings.", Type: "common"},
		{ID: RoleMember, Name: "Member", Description: "Members have access to basic Zoom video meetings functions but no account management privileges.", Type: "common"},
	}
	for i := 3; i < size.Roles; i++ {
		name := roleNames[(i-3)%len(roleNames)]
		if i-3 >= len(roleNames) {
			name = fmt.Sprintf("%s %d", name, (i-3)/len(roleNames)+1)
		}
		desc := ""
		if g.chance(0.8) {
			desc = "Custom role: " + name
		}
		org.Roles = append(org.Roles, Role{ID: g.id(), Name: name, Description: desc, Type: "common"})
	}

	usedGroupNames := map[string]bool{}
	for range size.Groups {
		name := g.pick(groupNames)
		for n := 2; usedGroupNames[strings.ToLower(name)]; n++ {
			name = fmt.Sprintf("%s %d", g.pick(groupNames), n)
		}
		usedGroupNames[strings.ToLower(name)] = true
		org.Groups = append(org.Groups, Group{ID: g.id(), Name: name})
	}

	org.Users = make([]User, 0, size.Users)
	for i := range size.Users {
		status := StatusActive
		switch r := g.rng.Float64(); {
		case i == 0:
		case r < size.PendingFraction:
			status = StatusPending
		case r < size.PendingFraction+size.InactiveFraction:
			status = StatusInactive
		}
		u := g.user(status, org, size.CustomAttributeFraction)
		if i == 0 {
			u.RoleID = RoleOwner
			u.Type = TypeLicensed
		}
		org.Users = append(org.Users, u)
	}
	g.managers(org)
	g.admins(org)
	return org
}

type gen struct {
	rng    *rand.Rand
	emails map[string]int    // local part and domain → how many users have them
	attrs  []CustomAttribute // attribute definitions: key and name
}

func newGen(seed int64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(uint64(seed), 0x5a0051a7)), emails: map[string]int{}}
	for _, name := range attributeNames {
		g.attrs = append(g.attrs, CustomAttribute{Key: "cbf_" + strings.ToLower(g.idN(16)), Name: name})
	}
	return g
}

// id makes a Zoom-like id: 16 random bytes in unpadded base64url, 22 chars.
func (g *gen) id() string { return g.idN(16) }

func (g *gen) idN(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// person picks a name and the ASCII form used for the email's local part.
// First and last names come from the same script, since mixed ones look odd.
func (g *gen) person() (first, last, display, local string) {
	pool := latinPeople
	if g.chance(0.15) {
		pool = cjkPeople
	}
	p := pool[g.rng.IntN(len(pool))]
	q := pool[g.rng.IntN(len(pool))]
	first, last = p.first, q.last
	local = p.asciiFirst + "." + q.asciiLast
	display = first + " " + last
	if pool[0].cjk {
		display = last + first
	}
	return first, last, display, local
}

func (g *gen) email(local string) string {
	domain := "example.com"
	switch r := g.rng.Float64(); {
	case r < 0.1:
		domain = "corp.example.org"
	case r < 0.15:
		domain = "example.co.jp"
	}
	// Names repeat in a large account: the second José García of a domain
	// gets jose.garcia2, the next jose.garcia3, and so on.
	addr := local + "@" + domain
	n := g.emails[addr]
	g.emails[addr] = n + 1
	if n > 0 {
		addr = fmt.Sprintf("%s%d@%s", local, n+1, domain)
	}
	switch r := g.rng.Float64(); {
	case r < 0.1: // "Jose.Garcia@Example.com"
		addr = titleEmail(addr)
	case r < 0.13:
		addr = strings.ToUpper(addr[:1]) + addr[1:]
	}
	return addr
}

// titleEmail capitalises each dot-separated word of the address.
func titleEmail(addr string) string {
	b := []byte(addr)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '.' || c == '@'
	}
	return string(b)
}

func (g *gen) timeBetween(from, to time.Time) time.Time {
	d := to.Sub(from)
	if d <= 0 {
		return from
	}
	return from.Add(time.Duration(g.rng.Int64N(int64(d)))).Truncate(time.Second)
}

func (g *gen) user(status string, org *Org, customFraction float64) User {
	first, last, display, local := g.person()
	u := User{
		ID:          g.id(),
		Email:       g.email(local),
		FirstName:   first,
		LastName:    last,
		DisplayName: display,
		Status:      status,
		RoleID:      RoleMember,
		Verified:    1,
		PMI:         1000000000 + g.rng.Int64N(8999999999),
	}
	switch r := g.rng.Float64(); {
	case r < 0.03: // no names at all: only the email identifies the user
		u.FirstName, u.LastName, u.DisplayName = "", "", ""
	case r < 0.06:
		u.LastName = ""
		u.DisplayName = first
	}
	switch r := g.rng.Float64(); {
	case r < 0.55:
		u.Type = TypeLicensed
	case r < 0.87:
		u.Type = TypeBasic
	case r < 0.975:
		u.Type = TypeUnassigned
	case r < 0.99:
		u.Type = TypeNone
	default:
		u.Type = 3
	}
	switch r := g.rng.Float64(); {
	case r < 0.02:
		u.RoleID = RoleAdmin
	case r < 0.12 && len(org.Roles) > 3:
		u.RoleID = org.Roles[3+g.rng.IntN(len(org.Roles)-3)].ID
	}
	if g.chance(0.8) {
		u.Dept = g.pick(departments)
	}
	if g.chance(0.9) {
		u.Timezone = g.pick(timezones)
	}
	if g.chance(0.85) {
		u.Language = g.pick(languages)
	}
	if g.chance(0.08) {
		u.Verified = 0
	}
	u.UserCreatedAt = g.timeBetween(genEpoch.AddDate(-9, 0, 0), genEpoch.AddDate(0, -1, 0))
	// created_at is when the latest login type was created: at or after the
	// user itself.
	u.CreatedAt = g.timeBetween(u.UserCreatedAt, genEpoch.AddDate(0, 0, -7))
	if g.chance(0.05) {
		u.UserCreatedAt = time.Time{}
	}
	switch r := g.rng.Float64(); {
	case r < 0.3:
		u.LoginTypes = []int{101}
		u.EmployeeUniqueID = g.idN(12)
	case r < 0.35:
		u.LoginTypes = []int{100, 101}
		u.EmployeeUniqueID = g.idN(12)
	case r < 0.45:
		u.LoginTypes = []int{1}
	case r < 0.5:
		u.LoginTypes = []int{27, 100}
	default:
		u.LoginTypes = []int{100}
	}
	if status != StatusPending && g.chance(0.85) {
		u.LastLoginTime = g.timeBetween(u.CreatedAt, genEpoch)
		u.LastClientVersion = g.pick(clientVersions)
	}
	if status == StatusPending {
		u.Verified = 0
		u.LastLoginTime = time.Time{}
		u.LastClientVersion = ""
		u.PMI = 0
	}
	if len(org.Groups) > 0 {
		n := 0
		switch r := g.rng.Float64(); {
		case r < 0.2:
		case r < 0.6:
			n = 1
		case r < 0.85:
			n = 2
		case r < 0.95:
			n = 3
		default:
			n = 4
		}
		for range min(n, len(org.Groups)) {
			// Skew towards the first groups: real accounts have a few big
			// groups and many small ones.
			i := int(float64(len(org.Groups)) * g.rng.Float64() * g.rng.Float64())
			id := org.Groups[i].ID
			if !containsString(u.GroupIDs, id) {
				u.GroupIDs = append(u.GroupIDs, id)
			}
		}
	}
	if g.chance(customFraction) {
		for _, i := range g.rng.Perm(len(g.attrs))[:1+g.rng.IntN(3)] {
			a := g.attrs[i]
			a.Value = g.pick(attributeValues)
			if g.chance(0.05) {
				a.Value = ""
			}
			u.CustomAttributes = append(u.CustomAttributes, a)
		}
	}
	if g.chance(0.7) {
		u.JobTitle = g.pick(jobTitles)
	}
	if g.chance(0.6) {
		u.Location = g.pick(locations)
	}
	if g.chance(0.5) {
		u.Company = "Example Corp"
	}
	if g.chance(0.4) {
		u.CostCenter = fmt.Sprintf("CC-%04d", g.rng.IntN(200))
	}
	return u
}

// managers gives about half of the users a manager: another user's email.
func (g *gen) managers(org *Org) {
	for i := range org.Users {
		if len(org.Users) > 1 && g.chance(0.5) {
			m := org.Users[g.rng.IntN(len(org.Users))]
			if m.ID != org.Users[i].ID {
				org.Users[i].Manager = strings.ToLower(m.Email)
			}
		}
	}
}

// admins gives groups 0 to 3 admins taken from the users, sometimes spelled
// in another case, and a few admins who are not users of the account.
func (g *gen) admins(org *Org) {
	for i := range org.Groups {
		n := 0
		switch r := g.rng.Float64(); {
		case r < 0.35:
		case r < 0.75:
			n = 1
		case r < 0.92:
			n = 2
		default:
			n = 3
		}
		seen := map[string]bool{}
		for range n {
			u := org.Users[g.rng.IntN(len(org.Users))]
			if seen[strings.ToLower(u.Email)] {
				continue
			}
			seen[strings.ToLower(u.Email)] = true
			email := u.Email
			switch r := g.rng.Float64(); {
			case r < 0.15:
				email = strings.ToUpper(email)
			case r < 0.3:
				email = strings.ToLower(email)
			}
			org.Groups[i].Admins = append(org.Groups[i].Admins, GroupAdmin{Email: email, Name: u.DisplayName})
		}
		if g.chance(0.04) {
			org.Groups[i].Admins = append(org.Groups[i].Admins, GroupAdmin{
				Email: fmt.Sprintf("former.admin%d@partner.example.net", i),
				Name:  "Former Admin",
			})
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type person struct {
	first, last           string
	asciiFirst, asciiLast string
	cjk                   bool
}

var latinPeople = []person{
	{"José", "García", "jose", "garcia", false},
	{"Zoë", "Müller", "zoe", "muller", false},
	{"Søren", "Kierkegård", "soren", "kierkegard", false},
	{"François", "Lefèvre", "francois", "lefevre", false},
	{"Łukasz", "Wiśniewski", "lukasz", "wisniewski", false},
	{"Ngọc", "Nguyễn", "ngoc", "nguyen", false},
	{"Ægir", "Þórsson", "aegir", "thorsson", false},
	{"Renée", "O'Brien", "renee", "obrien", false},
	{"İlkay", "Şahin", "ilkay", "sahin", false},
	{"Dmitri", "Иванов", "dmitri", "ivanov", false},
	{"Amélie", "Nuñez", "amelie", "nunez", false},
	{"Björn", "Ångström", "bjorn", "angstrom", false},
	{"Jill", "Chill", "jill", "chill", false},
	{"Dana", "Lee", "dana", "lee", false},
	{"Priya", "Raghunathan", "priya", "raghunathan", false},
	{"Oluwaseun", "Adébáyọ̀", "oluwaseun", "adebayo", false},
	{"Mary-Jane", "Smith-Jones", "maryjane", "smithjones", false},
	{"Chloé", "Dubois", "chloe", "dubois", false},
	{"Kai", "Ōtsuka", "kai", "otsuka", false},
	{"Anna", "Kowalska", "anna", "kowalska", false},
	{"Mohammed", "Al-Farsi", "mohammed", "alfarsi", false},
	{"Grace", "Hopper", "grace", "hopper", false},
	{"Tomás", "Ó Ceallaigh", "tomas", "oceallaigh", false},
	{"Emily", "Brown", "emily", "brown", false},
}

var cjkPeople = []person{
	{"太郎", "山田", "taro", "yamada", true},
	{"花子", "佐藤", "hanako", "sato", true},
	{"伟", "王", "wei", "wang", true},
	{"芳", "李", "fang", "li", true},
	{"민준", "김", "minjun", "kim", true},
	{"秀英", "陈", "xiuying", "chen", true},
}

var roleNames = []string{"Helpdesk", "Billing Admin", "Auditor", "Room Manager", "Webinar Coordinator", "Support Lead", "Security Reviewer", "Régie technique", "運用管理者"}

var groupNames = []string{
	"Engineering", "Sales EMEA", "Sales Americas", "Ventes – France", "Support (Tier 2)", "Marketing",
	"開発チーム", "Finance & Legal", "Customer Success", "R&D Zürich", "Recruiting", "IT Operations",
	"Executive Staff", "Interns 2025", "Product Design", "Partners", "销售部", "Data Science",
}

var departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Human Resources", "Support", "Legal", "Opérations", "研究開発", "IT"}

var timezones = []string{"America/New_York", "America/Los_Angeles", "Europe/Paris", "Europe/London", "Asia/Tokyo", "Asia/Shanghai", "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata"}

var languages = []string{"en-US", "fr-FR", "de-DE", "ja-JP", "zh-CN", "es-ES", "pt-PT", "ko-KO"}

var clientVersions = []string{"5.17.11.34827(mac)", "6.0.2.4680(win)", "5.16.10.26186(win)", "6.1.0.5170(linux)", "5.9.6.4993(mac)", "6.0.10.45380(iphone)"}

var jobTitles = []string{"Software Engineer", "Account Executive", "Support Specialist", "Directrice financière", "プロダクトマネージャー", "Designer", "Analyst"}

var locations = []string{"Paris", "San José", "Tokyo", "München", "London", "São Paulo", "Remote"}

var attributeNames = []string{"Badge", "Cost Center", "Région", "社員番号", "Clearance"}

var attributeValues = []string{"A1", "2323", "EMEA", "Nord-Est", "東京", "L3", "yes", "12-B"}
