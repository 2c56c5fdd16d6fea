//! Brokerless publish/subscribe over PGM and EPGM.
//!
//! Publisher/subscriber API, libzmq v1 framing with batching, and topic-prefix filtering come here
//! (issue 5).
