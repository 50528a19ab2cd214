-- admit(account): admission on its own (the function is lua/admission.lua,
-- prepended by dialer.store.scripts; commit.lua runs the same one).
--
-- KEYS[1] account hash   KEYS[2] active zset   KEYS[3] rate zset
-- KEYS[4] running set
-- ARGV[1] now   ARGV[2] key prefix "dl:{A}:"   ARGV[3] cap   ARGV[4] lease
-- ARGV[5] reserve per cent   ARGV[6] PENDING   ARGV[7] ADMITTED (see admission.lua)
-- Returns a flat list of call ids now in state ADMITTED.
return admit(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV))
