package ops

import "github.com/hotswap/hotswap"

// logDiskFull writes err to the log of app/slot when it is a full disk, so
// the slot's users see what ran out where they look, not only the server's
// stderr. what names the action, e.g. "deploy d-1".
func (s *Service) logDiskFull(app, slot, what string, err error) {
	if hotswap.ErrorKind(err) != hotswap.StorageFull {
		return
	}
	s.mu.Lock()
	st := s.slots[slotKey{app, slot}]
	s.mu.Unlock()
	if st != nil && st.log != nil {
		st.log.add("host", what+" failed: "+hotswap.ErrorMessage(err))
	}
}
