/*
 * Two-rank MPI ping-pong (test/e2e/slurm.test.ts, bench/sharens.sh): rank 0
 * sends a message to rank 1, which sends it back; for 8 B and 1 MiB, timed
 * over many round trips. Prints one line per size from rank 0:
 *   pingpong BYTES B: LAT us one-way, BW MB/s
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run(int rank, size_t bytes, int iters)
{
  char *buf = malloc(bytes);
  memset(buf, rank, bytes);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int warm = 1; warm >= 0; warm--) {
    int n = warm ? iters / 10 + 1 : iters;
    double t0 = MPI_Wtime();
    for (int i = 0; i < n; i++) {
      if (rank == 0) {
        MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
      }
    }
    double one_way = (MPI_Wtime() - t0) / n / 2;
    if (!warm && rank == 0) printf("pingpong %zu B: %.2f us one-way, %.1f MB/s\n", bytes, one_way * 1e6, bytes / one_way / 1e6);
  }
  free(buf);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) fprintf(stderr, "pingpong needs exactly 2 ranks, not %d\n", size);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int iters = argc > 1 ? atoi(argv[1]) : 1000;
  run(rank, 8, iters);
  run(rank, 1 << 20, iters / 10 + 1);
  MPI_Finalize();
  return 0;
}
