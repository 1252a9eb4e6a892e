// liblinear 2.3.0 (Debian liblinear-dev). Swift 6 rejects reading the mutable C global
// `liblinear_version` directly, so it is read through this inline function.
#include <linear.h>
static inline int clinear_version(void) { return liblinear_version; }
