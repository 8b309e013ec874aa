/* primes N: the number of primes below N (sieve of Eratosthenes). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100, count = 0;
  if (n < 2) { printf("0\n"); return 0; }
  char *composite = calloc((size_t)n, 1);
  if (!composite) return 2;
  for (long i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    for (long j = i * i; j < n; j += i) composite[j] = 1;
  }
  printf("%ld\n", count);
  free(composite);
  return 0;
}
