//! Unit tests of the machine, one group per rule of DESIGN §3.
