package zoomtest

import (
	"fmt"
	"time"
)

// SignIn records that a user signed in at at: its last_login_time, and
// nothing else, changes. No webhook is sent (Zoom's user.signed_in is not
// one the connector subscribes to).
func (a *Account) SignIn(user string, at time.Time) error {
	_, err := a.commit(func(st *state) ([]event, error) {
		su := st.lookupUser(user)
		if su == nil {
			return nil, fmt.Errorf("zoomtest: no user %q", user)
		}
		st.update(su, func(u *User) { u.LastLoginTime = at.UTC().Truncate(time.Second) })
		return nil, nil
	})
	return err
}
