package zoomtest

import (
	"context"
	"math/rand/v2"
	"time"
)

// The Server's mutations act on its default account, as they did when a
// Server held one account; Account has the same methods for every account.

// AddUser adds an active user to the default account; see Account.AddUser.
func (s *Server) AddUser(ctx context.Context, u User) (string, Delivery, error) {
	return s.def.AddUser(ctx, u)
}

// InviteUser adds a pending user to the default account; see
// Account.InviteUser.
func (s *Server) InviteUser(ctx context.Context, u User) (string, Delivery, error) {
	return s.def.InviteUser(ctx, u)
}

// AcceptInvitation activates a pending user of the default account; see
// Account.AcceptInvitation.
func (s *Server) AcceptInvitation(ctx context.Context, user string) (Delivery, error) {
	return s.def.AcceptInvitation(ctx, user)
}

// RemoveUser removes a user from the default account; see
// Account.RemoveUser.
func (s *Server) RemoveUser(ctx context.Context, user, action string) (Delivery, error) {
	return s.def.RemoveUser(ctx, user, action)
}

// UpdateUser changes profile fields of a user of the default account; see
// Account.UpdateUser.
func (s *Server) UpdateUser(ctx context.Context, user string, p Profile) (Delivery, error) {
	return s.def.UpdateUser(ctx, user, p)
}

// SetUserType changes the type of a user of the default account; see
// Account.SetUserType.
func (s *Server) SetUserType(ctx context.Context, user string, typ int) (Delivery, error) {
	return s.def.SetUserType(ctx, user, typ)
}

// SetCustomAttribute sets a custom attribute of a user of the default
// account; see Account.SetCustomAttribute.
func (s *Server) SetCustomAttribute(ctx context.Context, user string, a CustomAttribute) (Delivery, error) {
	return s.def.SetCustomAttribute(ctx, user, a)
}

// RemoveCustomAttribute removes a custom attribute of a user of the default
// account; see Account.RemoveCustomAttribute.
func (s *Server) RemoveCustomAttribute(ctx context.Context, user, key string) (Delivery, error) {
	return s.def.RemoveCustomAttribute(ctx, user, key)
}

// DeactivateUser deactivates a user of the default account; see
// Account.DeactivateUser.
func (s *Server) DeactivateUser(ctx context.Context, user string) (Delivery, error) {
	return s.def.DeactivateUser(ctx, user)
}

// ActivateUser reactivates a user of the default account; see
// Account.ActivateUser.
func (s *Server) ActivateUser(ctx context.Context, user string) (Delivery, error) {
	return s.def.ActivateUser(ctx, user)
}

// SetUserRole gives a user of the default account another role; see
// Account.SetUserRole.
func (s *Server) SetUserRole(ctx context.Context, user, roleID string) (Delivery, error) {
	return s.def.SetUserRole(ctx, user, roleID)
}

// AddGroupMember adds a user of the default account to a group; see
// Account.AddGroupMember.
func (s *Server) AddGroupMember(ctx context.Context, groupID, user string) (Delivery, error) {
	return s.def.AddGroupMember(ctx, groupID, user)
}

// RemoveGroupMember removes a user of the default account from a group;
// see Account.RemoveGroupMember.
func (s *Server) RemoveGroupMember(ctx context.Context, groupID, user string) (Delivery, error) {
	return s.def.RemoveGroupMember(ctx, groupID, user)
}

// AddGroup creates a group in the default account; see Account.AddGroup.
func (s *Server) AddGroup(ctx context.Context, name string) (string, Delivery, error) {
	return s.def.AddGroup(ctx, name)
}

// RenameGroup renames a group of the default account; see
// Account.RenameGroup.
func (s *Server) RenameGroup(ctx context.Context, groupID, name string) (Delivery, error) {
	return s.def.RenameGroup(ctx, groupID, name)
}

// DeleteGroup deletes a group of the default account; see
// Account.DeleteGroup.
func (s *Server) DeleteGroup(ctx context.Context, groupID string) (Delivery, error) {
	return s.def.DeleteGroup(ctx, groupID)
}

// AddGroupAdmin adds an admin to a group of the default account; see
// Account.AddGroupAdmin.
func (s *Server) AddGroupAdmin(ctx context.Context, groupID, email string) (Delivery, error) {
	return s.def.AddGroupAdmin(ctx, groupID, email)
}

// RemoveGroupAdmin removes an admin of a group of the default account; see
// Account.RemoveGroupAdmin.
func (s *Server) RemoveGroupAdmin(ctx context.Context, groupID, user string) (Delivery, error) {
	return s.def.RemoveGroupAdmin(ctx, groupID, user)
}

// RandomMutations applies n random mutations to the default account; see
// Account.RandomMutations.
func (s *Server) RandomMutations(ctx context.Context, rng *rand.Rand, n int) ([]Delivery, error) {
	return s.def.RandomMutations(ctx, rng, n)
}

// ReadAfterChange reports, for a user of the default account, when a read
// first returned it after its last change; see Account.ReadAfterChange.
func (s *Server) ReadAfterChange(user string) (time.Time, bool) {
	return s.def.ReadAfterChange(user)
}
