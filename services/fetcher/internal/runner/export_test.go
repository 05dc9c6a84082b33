package runner

// RoundDeadAfter is how long past its start a round still open is taken
// for dead (its lister stopped without ending it).
const RoundDeadAfter = roundMaxGather + roundDeadMargin
