package runner

// RoundDeadAfter is how long past its start a round still open is taken
// for dead (its lister stopped without ending it).
const RoundDeadAfter = roundMaxGather + roundDeadMargin

// RoundBeatsMissed is how many beats a listing round's lister may miss
// before its round is taken for lost.
const RoundBeatsMissed = roundBeatsMissed
