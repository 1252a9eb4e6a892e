// Open MPI (libopenmpi-dev, pkg-config `ompi`). Its handles are macros casting the addresses of library globals
// (`MPI_COMM_WORLD` is `((MPI_Comm) &ompi_mpi_comm_world)`), which Swift does not import: each one is returned by a
// static inline function instead (MACHINE.md, "Snags found", 3).
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op cmpi_sum(void) { return MPI_SUM; }
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int cmpi_success(void) { return MPI_SUCCESS; }
static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
