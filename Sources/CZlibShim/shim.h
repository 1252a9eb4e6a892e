// zlib 1.2 (Debian zlib1g-dev): inflate, for gzip-compressed dataset files. Not named CZlib: ZIPFoundation already
// defines a Clang module of that name, and two modules of one name cannot be built together.
#include <zlib.h>
