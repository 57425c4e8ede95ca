#!/bin/bash
# gcc under Kiln: compile a small C file to assembly and to an object, link
# it and run the program (cc1, as, collect2 and ld all run with Kiln).
. "$(dirname "$0")/common.sh"
require gcc cksum

workload() {
  cat >prog.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; int value; char name[24]; };
static int compare(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void) {
  struct node *head = NULL;
  for (int i = 0; i < 1000; i++) {
    struct node *n = malloc(sizeof *n);
    n->value = (i * 7919) % 1009;
    snprintf(n->name, sizeof n->name, "node-%d", i);
    n->next = head;
    head = n;
  }
  int values[1000], k = 0;
  for (struct node *n = head; n != NULL; n = n->next) values[k++] = n->value;
  qsort(values, 1000, sizeof values[0], compare);
  printf("%d %d %d %s\n", values[0], values[500], values[999], head->name);
  while (head != NULL) { struct node *next = head->next; free(head); head = next; }
  return 0;
}
C
  gcc -O2 -frandom-seed=kiln -S -o - prog.c | grep -v '\.ident' | cksum
  gcc -O2 -frandom-seed=kiln -Wall -c prog.c -o prog.o && cksum <prog.o
  gcc -O2 -frandom-seed=kiln prog.o -o prog && ./prog
}
run_workload
