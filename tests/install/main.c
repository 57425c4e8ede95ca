#include <kiln.h>
#include <stdio.h>
int main(void){ void *p = kiln_malloc(10); printf("%s %d\n", kiln_version(), kiln_owns(p)); kiln_free(p); return 0; }
