#pragma once
// This process's open-file limit: every socket is a file descriptor, so a
// server holding thousands of connections (or a test opening them) needs
// more than the usual soft limit of 1024.

namespace wsflow::os {

// Raises the soft RLIMIT_NOFILE to `wanted`, or to the hard limit when that
// is lower; never lowers it. Returns the soft limit now, or `wanted` when
// the limit cannot be read.
long raise_open_file_limit(long wanted);

}  // namespace wsflow::os
