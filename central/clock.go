package central

import "time"

// ClockShift returns how much to subtract from the times an edge reports:
// its clock offset (sentAt minus central's receive time now) when that is
// beyond tolerance, zero otherwise. Transit time counts as offset too, which
// is why small offsets are left alone.
func ClockShift(sentAt, now time.Time, tolerance time.Duration) time.Duration {
	offset := sentAt.Sub(now)
	if offset > tolerance || offset < -tolerance {
		return offset
	}
	return 0
}

// CorrectReceivedAt maps an edge's received_at to central's clock: it
// subtracts shift, and a time still more than tolerance ahead of now (an
// edge clock that jumped between receiving and sending) becomes now, so a
// message can never win newer-wins against data that arrives after it.
func CorrectReceivedAt(recv time.Time, shift time.Duration, now time.Time, tolerance time.Duration) time.Time {
	recv = recv.Add(-shift)
	if recv.After(now.Add(tolerance)) {
		return now
	}
	return recv
}
