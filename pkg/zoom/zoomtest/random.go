package zoomtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// RandomMutations applies n random mutations of every kind the simulator
// has, for demos and soak tests, and returns their deliveries. A mutation
// Zoom would refuse (say, disassociating an Admin) is skipped and another
// one drawn, so n changes happen unless the account is too small for them;
// the owner is never touched. The same rng state on the same organisation
// gives the same changes, apart from the random ids of new users and groups.
func (a *Account) RandomMutations(ctx context.Context, rng *rand.Rand, n int) ([]Delivery, error) {
	var out []Delivery
	done, tries := 0, 0
	for done < n && tries < n*20+20 {
		tries++
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("random mutations: %w", err)
		}
		d, err := a.randomMutation(ctx, rng)
		var ae *APIError
		switch {
		case errors.As(err, &ae) || errors.Is(err, errSkip):
			continue
		case err != nil:
			return out, err
		}
		done++
		if d.Event != "" {
			out = append(out, d)
		}
	}
	return out, nil
}

var errSkip = errors.New("zoomtest: no target for this mutation")

// pick draws a random user (not the owner) with the given status, any when
// status is empty.
func (a *Account) pick(rng *rand.Rand, status string) (User, bool) {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	list := a.st.all
	if status != "" {
		list = a.st.byStatus[status]
	}
	for range 10 {
		if len(list) == 0 {
			return User{}, false
		}
		su := list[rng.IntN(len(list))]
		if su.u.RoleID != RoleOwner {
			return su.u.clone(), true
		}
	}
	return User{}, false
}

func (a *Account) pickGroup(rng *rand.Rand) (Group, bool) {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	if len(a.st.groups) == 0 {
		return Group{}, false
	}
	g := a.st.groups[rng.IntN(len(a.st.groups))].g
	g.Admins = append([]GroupAdmin(nil), g.Admins...)
	return g, true
}

func (a *Account) pickRole(rng *rand.Rand) (string, bool) {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	var ids []string
	for _, r := range a.st.roles {
		if r.ID != RoleOwner && r.Type == "common" {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return "", false
	}
	return ids[rng.IntN(len(ids))], true
}

func (a *Account) randomMutation(ctx context.Context, rng *rand.Rand) (Delivery, error) {
	g := &gen{rng: rng, emails: map[string]int{}}
	newUser := func() User {
		first, last, display, local := g.person()
		return User{
			Email:     fmt.Sprintf("%s.%d@example.com", local, rng.IntN(1_000_000)),
			FirstName: first, LastName: last, DisplayName: display,
			Type: []int{TypeBasic, TypeLicensed, TypeLicensed, TypeUnassigned}[rng.IntN(4)],
			Dept: departments[rng.IntN(len(departments))], Timezone: timezones[rng.IntN(len(timezones))],
			Verified: 1,
		}
	}
	switch op := rng.IntN(18); op {
	case 0:
		_, d, err := a.AddUser(ctx, newUser())
		return d, err
	case 1:
		_, d, err := a.InviteUser(ctx, newUser())
		return d, err
	case 2:
		u, ok := a.pick(rng, StatusPending)
		if !ok {
			return Delivery{}, errSkip
		}
		return a.AcceptInvitation(ctx, u.ID)
	case 3:
		u, ok := a.pick(rng, "")
		if !ok {
			return Delivery{}, errSkip
		}
		return a.RemoveUser(ctx, u.ID, []string{"delete", "disassociate"}[rng.IntN(2)])
	case 4:
		u, ok := a.pick(rng, StatusActive)
		if !ok {
			return Delivery{}, errSkip
		}
		return a.DeactivateUser(ctx, u.ID)
	case 5:
		u, ok := a.pick(rng, StatusInactive)
		if !ok {
			return Delivery{}, errSkip
		}
		return a.ActivateUser(ctx, u.ID)
	case 6:
		u, ok := a.pick(rng, "")
		if !ok {
			return Delivery{}, errSkip
		}
		return a.SetUserType(ctx, u.ID, []int{TypeBasic, TypeLicensed, TypeUnassigned}[rng.IntN(3)])
	case 7:
		u, ok := a.pick(rng, "")
		role, ok2 := a.pickRole(rng)
		if !ok || !ok2 {
			return Delivery{}, errSkip
		}
		return a.SetUserRole(ctx, u.ID, role)
	case 8, 9:
		u, ok := a.pick(rng, "")
		grp, ok2 := a.pickGroup(rng)
		if !ok || !ok2 {
			return Delivery{}, errSkip
		}
		return a.AddGroupMember(ctx, grp.ID, u.ID)
	case 10:
		u, ok := a.pick(rng, "")
		if !ok || len(u.GroupIDs) == 0 {
			return Delivery{}, errSkip
		}
		return a.RemoveGroupMember(ctx, u.GroupIDs[rng.IntN(len(u.GroupIDs))], u.ID)
	case 11:
		u, ok := a.pick(rng, "")
		if !ok {
			return Delivery{}, errSkip
		}
		p := Profile{Dept: Ptr(departments[rng.IntN(len(departments))])}
		if rng.IntN(2) == 0 {
			p.DisplayName = Ptr(strings.TrimSpace(u.DisplayName + " " + []string{"(PTO)", "✈", "Jr."}[rng.IntN(3)]))
		}
		return a.UpdateUser(ctx, u.ID, p)
	case 12:
		grp, ok := a.pickGroup(rng)
		if !ok {
			return Delivery{}, errSkip
		}
		return a.RenameGroup(ctx, grp.ID, fmt.Sprintf("%s %d", groupNames[rng.IntN(len(groupNames))], rng.IntN(10000)))
	case 13:
		_, d, err := a.AddGroup(ctx, fmt.Sprintf("%s %d", groupNames[rng.IntN(len(groupNames))], rng.IntN(100000)))
		return d, err
	case 14:
		// Deleting groups is rare in real accounts; keep it rarer here.
		grp, ok := a.pickGroup(rng)
		if !ok || rng.IntN(4) != 0 {
			return Delivery{}, errSkip
		}
		return a.DeleteGroup(ctx, grp.ID)
	case 15:
		u, ok := a.pick(rng, "")
		grp, ok2 := a.pickGroup(rng)
		if !ok || !ok2 {
			return Delivery{}, errSkip
		}
		email := u.Email
		if rng.IntN(3) == 0 {
			email = strings.ToUpper(email)
		}
		return a.AddGroupAdmin(ctx, grp.ID, email)
	case 16:
		grp, ok := a.pickGroup(rng)
		if !ok || len(grp.Admins) == 0 {
			return Delivery{}, errSkip
		}
		return a.RemoveGroupAdmin(ctx, grp.ID, grp.Admins[rng.IntN(len(grp.Admins))].Email)
	default:
		u, ok := a.pick(rng, "")
		if !ok {
			return Delivery{}, errSkip
		}
		if len(u.CustomAttributes) > 0 && rng.IntN(2) == 0 {
			return a.RemoveCustomAttribute(ctx, u.ID, u.CustomAttributes[rng.IntN(len(u.CustomAttributes))].Key)
		}
		return a.SetCustomAttribute(ctx, u.ID, CustomAttribute{
			Key: "cbf_sim" + fmt.Sprint(rng.IntN(3)), Name: []string{"Badge", "Région", "社員番号"}[rng.IntN(3)],
			Value: attributeValues[rng.IntN(len(attributeValues))],
		})
	}
}
