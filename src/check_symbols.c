/* check_symbols.c — turning code addresses into "main.c:12 (parse_line)" at
 * report time, without malloc.
 *
 * Three sources, best first:
 *   1. DWARF line tables (.debug_line, versions 2 to 5) of the object file,
 *      for file:line — present when the program was built with -g;
 *   2. the ELF symbol table (.symtab, else .dynsym), for the function,
 *      static functions included;
 *   3. dladdr, for the module and any exported symbol.
 * The object file is found with dladdr (the main program as /proc/self/exe)
 * and mapped read-only with kiln_os_map_file; mappings are kept until exit
 * (reports are rare; the strings returned point into them).  Everything is
 * read with bounds checks: a truncated or unexpected file yields "unknown",
 * never a fault.  Compressed debug sections and split DWARF are not read.
 *
 * Callers serialise (reports hold the report lock), so the module cache
 * needs no lock of its own.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#include "check_internal.h"
#include "os.h"

#define MODULES_MAX 32

typedef struct module_s {
  uintptr_t base;            /* dli_fbase: where the module's first page is mapped */
  uintptr_t bias;            /* runtime address - ELF virtual address */
  const char *name;          /* basename, for messages */
  const uint8_t *image;      /* the mapped file, NULL if unavailable */
  size_t image_size;
  const Elf64_Sym *syms;
  size_t sym_count;
  const char *strs;
  size_t strs_size;
  const uint8_t *line;       /* .debug_line */
  size_t line_size;
  const char *line_str;      /* .debug_line_str (DWARF 5) */
  size_t line_str_size;
  const char *str;           /* .debug_str */
  size_t str_size;
  bool is_kiln;              /* libkiln.so itself */
} module_t;

static module_t modules[MODULES_MAX];
static size_t module_count;
static uintptr_t main_base;    /* map start of the main program */
static uintptr_t kiln_base;    /* map start of the module holding this code */
static bool bases_known;

/* --- bounded reading ----------------------------------------------------------- */
typedef struct reader_s {
  const uint8_t *p, *end;
  bool bad;
} reader_t;

static bool rd_need(reader_t *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = true;
    r->p = r->end;
    return false;
  }
  return true;
}

static uint64_t rd_u(reader_t *r, size_t n) {
  if (!rd_need(r, n)) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i); /* little-endian targets only */
  r->p += n;
  return v;
}

static uint64_t rd_uleb(reader_t *r) {
  uint64_t v = 0;
  for (unsigned shift = 0; rd_need(r, 1); shift += 7) {
    uint8_t b = *r->p++;
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

static int64_t rd_sleb(reader_t *r) {
  int64_t v = 0;
  unsigned shift = 0;
  uint8_t b = 0;
  while (rd_need(r, 1)) {
    b = *r->p++;
    if (shift < 64) v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
  return v;
}

/* A NUL-terminated string inside [p, end), or NULL. */
static const char *rd_str(reader_t *r) {
  if (r->bad) return NULL;
  const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
  if (nul == NULL) {
    r->bad = true;
    return NULL;
  }
  const char *s = (const char *)r->p;
  r->p = nul + 1;
  return s;
}

static const char *str_at(const char *section, size_t size, uint64_t offset) {
  if (section == NULL || offset >= size) return NULL;
  return memchr(section + offset, 0, size - offset) ? section + offset : NULL;
}

static const char *base_name(const char *path) {
  if (path == NULL) return NULL;
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* --- modules ------------------------------------------------------------------------ */
static int find_main(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t lowest = UINTPTR_MAX;
  for (unsigned i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_phdr[i].p_vaddr < lowest)
      lowest = info->dlpi_phdr[i].p_vaddr;
  if (lowest != UINTPTR_MAX)
    *(uintptr_t *)arg = kiln_align_down(info->dlpi_addr + lowest, kiln_os_page_size());
  return 1; /* the first object reported is the main program */
}

static void bases_init(void) {
  if (bases_known) return;
  bases_known = true;
  dl_iterate_phdr(find_main, &main_base);
  Dl_info info;
  if (dladdr((void *)kiln_symbolize, &info) != 0) kiln_base = (uintptr_t)info.dli_fbase;
}

static void module_read_elf(module_t *m) {
  const uint8_t *img = m->image;
  size_t size = m->image_size;
  if (size < sizeof(Elf64_Ehdr)) return;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) return;
  /* Load bias: the lowest PT_LOAD (page-aligned) is what dli_fbase names. */
  if (eh->e_phoff < size && eh->e_phnum <= (size - eh->e_phoff) / sizeof(Elf64_Phdr)) {
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff);
    uintptr_t lowest = UINTPTR_MAX;
    for (unsigned i = 0; i < eh->e_phnum; i++)
      if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < lowest) lowest = ph[i].p_vaddr;
    if (lowest != UINTPTR_MAX) m->bias = m->base - kiln_align_down(lowest, kiln_os_page_size());
  }
  if (eh->e_shoff >= size || eh->e_shentsize != sizeof(Elf64_Shdr) ||
      eh->e_shnum > (size - eh->e_shoff) / sizeof(Elf64_Shdr) || eh->e_shstrndx >= eh->e_shnum)
    return;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
  const Elf64_Shdr *names = &sh[eh->e_shstrndx];
  if (names->sh_offset >= size || names->sh_size > size - names->sh_offset) return;
  const char *shstr = (const char *)img + names->sh_offset;
  const Elf64_Shdr *symtab = NULL, *dynsym = NULL;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    const Elf64_Shdr *s = &sh[i];
    if (s->sh_type == SHT_NOBITS || s->sh_offset >= size || s->sh_size > size - s->sh_offset) continue;
    if (s->sh_type == SHT_SYMTAB) symtab = s;
    if (s->sh_type == SHT_DYNSYM) dynsym = s;
    const char *name = str_at(shstr, names->sh_size, s->sh_name);
    if (name == NULL || (s->sh_flags & SHF_COMPRESSED)) continue;
    const uint8_t *data = img + s->sh_offset;
    if (strcmp(name, ".debug_line") == 0) {
      m->line = data;
      m->line_size = s->sh_size;
    } else if (strcmp(name, ".debug_line_str") == 0) {
      m->line_str = (const char *)data;
      m->line_str_size = s->sh_size;
    } else if (strcmp(name, ".debug_str") == 0) {
      m->str = (const char *)data;
      m->str_size = s->sh_size;
    }
  }
  const Elf64_Shdr *use = symtab ? symtab : dynsym;
  if (use != NULL && use->sh_link < eh->e_shnum) {
    const Elf64_Shdr *strs = &sh[use->sh_link];
    if (strs->sh_offset < size && strs->sh_size <= size - strs->sh_offset) {
      m->syms = (const Elf64_Sym *)(img + use->sh_offset);
      m->sym_count = use->sh_size / sizeof(Elf64_Sym);
      m->strs = (const char *)img + strs->sh_offset;
      m->strs_size = strs->sh_size;
    }
  }
}

static module_t *module_for(uintptr_t addr, Dl_info *info) {
  bases_init();
  if (dladdr((void *)addr, info) == 0 || info->dli_fbase == NULL) return NULL;
  uintptr_t base = (uintptr_t)info->dli_fbase;
  for (size_t i = 0; i < module_count; i++)
    if (modules[i].base == base) return &modules[i];
  if (module_count == MODULES_MAX) return NULL;
  module_t *m = &modules[module_count++];
  memset(m, 0, sizeof *m);
  m->base = base;
  m->bias = base;
  m->name = info->dli_fname && info->dli_fname[0] ? base_name(info->dli_fname) : "?";
  m->is_kiln = base == kiln_base && base != main_base;
  /* The main program's dli_fname is argv[0], maybe relative to a directory
   * we have left: read the running image instead. */
  const char *path = base == main_base ? "/proc/self/exe" : info->dli_fname;
  if (path != NULL && path[0] != '\0') m->image = kiln_os_map_file(path, &m->image_size);
  if (m->image != NULL) module_read_elf(m);
  return m;
}

/* The symbol of type `type` (STT_FUNC or STT_OBJECT) covering vaddr. */
static const char *module_symbol(const module_t *m, uintptr_t vaddr, unsigned type, uintptr_t *offset) {
  const Elf64_Sym *best = NULL;
  for (size_t i = 0; i < m->sym_count; i++) {
    const Elf64_Sym *s = &m->syms[i];
    unsigned t = ELF64_ST_TYPE(s->st_info);
    if (s->st_shndx == SHN_UNDEF || s->st_value > vaddr) continue;
    if (t != type && !(type == STT_FUNC && t == STT_GNU_IFUNC)) continue;
    if (vaddr - s->st_value >= (s->st_size ? s->st_size : 1)) continue;
    if (best == NULL || s->st_value > best->st_value) best = s;
  }
  if (best == NULL) return NULL;
  *offset = vaddr - best->st_value;
  return str_at(m->strs, m->strs_size, best->st_name);
}

/* --- DWARF line tables --------------------------------------------------------------- */
typedef struct line_unit_s {
  unsigned version, offset_size, address_size, min_inst, line_range, opcode_base;
  int line_base;
  const uint8_t *std_lengths;
  reader_t dirs, files;      /* v5: formats + entries; v2-4: the string lists */
  const uint8_t *program, *end;
} line_unit_t;

enum {
  FORM_block = 0x09, FORM_block1 = 0x0a, FORM_data1 = 0x0b, FORM_data2 = 0x05, FORM_data4 = 0x06,
  FORM_data8 = 0x07, FORM_data16 = 0x1e, FORM_string = 0x08, FORM_strp = 0x0e, FORM_line_strp = 0x1f,
  FORM_udata = 0x0f, FORM_sdata = 0x0d,
};
enum { LNCT_path = 1, LNCT_directory_index = 2 };

static bool read_form(reader_t *r, uint64_t form, const line_unit_t *u, const module_t *m, uint64_t *num,
                      const char **str) {
  switch (form) {
    case FORM_string: *str = rd_str(r); break;
    case FORM_line_strp: {
      uint64_t offset = rd_u(r, u->offset_size);
      *str = m ? str_at(m->line_str, m->line_str_size, offset) : NULL;
      break;
    }
    case FORM_strp: {
      uint64_t offset = rd_u(r, u->offset_size);
      *str = m ? str_at(m->str, m->str_size, offset) : NULL;
      break;
    }
    case FORM_udata: *num = rd_uleb(r); break;
    case FORM_sdata: *num = (uint64_t)rd_sleb(r); break;
    case FORM_data1: *num = rd_u(r, 1); break;
    case FORM_data2: *num = rd_u(r, 2); break;
    case FORM_data4: *num = rd_u(r, 4); break;
    case FORM_data8: *num = rd_u(r, 8); break;
    case FORM_data16: rd_u(r, 8); rd_u(r, 8); break;
    case FORM_block: { uint64_t n = rd_uleb(r); if (rd_need(r, n)) r->p += n; break; }
    case FORM_block1: { uint64_t n = rd_u(r, 1); if (rd_need(r, n)) r->p += n; break; }
    default: return false;
  }
  return !r->bad;
}

/* A v5 directory or file table at *table (format count, formats, entry
 * count, entries): reads the entries up to `want` (all of them if there are
 * fewer), notes entry `want`'s path and directory index (NULL and 0 if it
 * has none), and leaves *table after the last entry read.  False on a
 * malformed table. */
static bool v5_table(const line_unit_t *u, const module_t *m, reader_t *table, uint64_t want, const char **path,
                     uint64_t *dir) {
  unsigned nformats = (unsigned)rd_u(table, 1);
  reader_t formats = *table;
  for (unsigned i = 0; i < nformats; i++) {
    rd_uleb(table);
    rd_uleb(table);
  }
  uint64_t count = rd_uleb(table);
  *path = NULL;
  *dir = 0;
  for (uint64_t e = 0; e < count && e <= want && !table->bad; e++) {
    reader_t f = formats;
    for (unsigned i = 0; i < nformats; i++) {
      uint64_t content = rd_uleb(&f), form = rd_uleb(&f), num = 0;
      const char *str = NULL;
      if (!read_form(table, form, u, m, &num, &str)) return false;
      if (e != want) continue;
      if (content == LNCT_path) *path = str;
      if (content == LNCT_directory_index) *dir = num;
    }
  }
  return !table->bad;
}

/* Entry `index` of a v5 directory or file table: path and directory index. */
static bool v5_entry(const line_unit_t *u, const module_t *m, reader_t table, uint64_t index, const char **path,
                     uint64_t *dir) {
  return v5_table(u, m, &table, index, path, dir) && *path != NULL;
}

/* File `index` of a unit: its name and directory (either may be NULL). */
static void unit_file(const line_unit_t *u, const module_t *m, uint64_t index, const char **name,
                      const char **dir) {
  *name = *dir = NULL;
  if (u->version >= 5) {
    uint64_t dir_index;
    if (!v5_entry(u, m, u->files, index, name, &dir_index)) return;
    uint64_t unused;
    v5_entry(u, m, u->dirs, dir_index, dir, &unused);
    return;
  }
  if (index == 0) return;
  reader_t f = u->files;
  uint64_t dir_index = 0;
  for (uint64_t i = 1; i <= index; i++) {
    const char *s = rd_str(&f);
    if (s == NULL || *s == '\0') return;
    dir_index = rd_uleb(&f);
    rd_uleb(&f);
    rd_uleb(&f);
    if (i == index) *name = s;
  }
  reader_t d = u->dirs;
  for (uint64_t i = 1; i <= dir_index; i++) {
    const char *s = rd_str(&d);
    if (s == NULL || *s == '\0') return;
    if (i == dir_index) *dir = s;
  }
}

static bool unit_header(reader_t *r, line_unit_t *u, reader_t *next) {
  uint64_t length = rd_u(r, 4);
  u->offset_size = 4;
  if (length == 0xffffffffu) {
    length = rd_u(r, 8);
    u->offset_size = 8;
  }
  if (r->bad || length > (uint64_t)(r->end - r->p)) return false;
  *next = (reader_t){r->p + length, r->end, false};
  reader_t h = {r->p, r->p + length, false};
  u->end = r->p + length;
  u->version = (unsigned)rd_u(&h, 2);
  if (u->version < 2 || u->version > 5) return false;
  u->address_size = 8;
  if (u->version >= 5) {
    u->address_size = (unsigned)rd_u(&h, 1);
    rd_u(&h, 1); /* segment selector size */
  }
  uint64_t header_length = rd_u(&h, u->offset_size);
  if (h.bad || header_length > (uint64_t)(h.end - h.p)) return false;
  u->program = h.p + header_length;
  u->min_inst = (unsigned)rd_u(&h, 1);
  if (u->version >= 4) rd_u(&h, 1); /* max ops per instruction: VLIW only */
  rd_u(&h, 1);                      /* default_is_stmt */
  u->line_base = (int8_t)rd_u(&h, 1);
  u->line_range = (unsigned)rd_u(&h, 1);
  u->opcode_base = (unsigned)rd_u(&h, 1);
  if (h.bad || u->line_range == 0 || u->opcode_base == 0 || !rd_need(&h, u->opcode_base - 1)) return false;
  u->std_lengths = h.p;
  h.p += u->opcode_base - 1;
  if (u->version >= 5) {
    u->dirs = h;
    /* Read through the directory table to find the file table. */
    const char *unused_path;
    uint64_t unused_dir;
    if (!v5_table(u, NULL, &h, UINT64_MAX, &unused_path, &unused_dir)) return false;
    u->files = h;
  } else {
    u->dirs = h;
    while (!h.bad) {
      const char *s = rd_str(&h);
      if (s == NULL || *s == '\0') break;
    }
    u->files = h;
  }
  return !h.bad;
}

/* Run a unit's line program: the row covering vaddr, if any. */
static bool unit_find(const line_unit_t *u, uintptr_t vaddr, uint64_t *file, unsigned *line) {
  reader_t r = {u->program, u->end, false};
  uint64_t address = 0, reg_file = 1;
  int64_t reg_line = 1;
  bool have_prev = false;
  uint64_t prev_address = 0, prev_file = 0;
  int64_t prev_line = 0;
#define EMIT_ROW()                                                              \
  do {                                                                          \
    if (have_prev && prev_address <= vaddr && vaddr < address) {                \
      *file = prev_file;                                                        \
      *line = (unsigned)prev_line;                                              \
      return true;                                                              \
    }                                                                           \
    have_prev = true;                                                           \
    prev_address = address;                                                     \
    prev_file = reg_file;                                                       \
    prev_line = reg_line;                                                       \
  } while (0)
  while (!r.bad && r.p < r.end) {
    unsigned op = (unsigned)rd_u(&r, 1);
    if (op >= u->opcode_base) {
      unsigned adjusted = op - u->opcode_base;
      address += (uint64_t)(adjusted / u->line_range) * u->min_inst;
      reg_line += u->line_base + (int)(adjusted % u->line_range);
      EMIT_ROW();
      continue;
    }
    switch (op) {
      case 0: { /* extended */
        uint64_t len = rd_uleb(&r);
        if (len == 0 || !rd_need(&r, len)) return false;
        const uint8_t *next = r.p + len;
        unsigned sub = (unsigned)rd_u(&r, 1);
        if (sub == 1) { /* end_sequence */
          EMIT_ROW();
          have_prev = false;
          address = 0;
          reg_file = 1;
          reg_line = 1;
        } else if (sub == 2) { /* set_address */
          address = rd_u(&r, len - 1 < 8 ? len - 1 : 8);
        }
        r.p = next;
        break;
      }
      case 1: EMIT_ROW(); break;                                      /* copy */
      case 2: address += rd_uleb(&r) * u->min_inst; break;            /* advance_pc */
      case 3: reg_line += rd_sleb(&r); break;                         /* advance_line */
      case 4: reg_file = rd_uleb(&r); break;                          /* set_file */
      case 8: address += (uint64_t)((255 - u->opcode_base) / u->line_range) * u->min_inst; break;
      case 9: address += rd_u(&r, 2); break;                          /* fixed_advance_pc */
      default: /* skip an opcode we do not need by its declared operand count */
        for (unsigned i = 0; i < u->std_lengths[op - 1]; i++) rd_uleb(&r);
        break;
    }
  }
#undef EMIT_ROW
  return false;
}

static bool module_line(const module_t *m, uintptr_t vaddr, const char **file, const char **dir,
                        unsigned *line) {
  reader_t r = {m->line, m->line + m->line_size, false};
  while (m->line != NULL && !r.bad && r.p < r.end) {
    line_unit_t u;
    reader_t next;
    if (!unit_header(&r, &u, &next)) return false;
    uint64_t file_index;
    if (unit_find(&u, vaddr, &file_index, line)) {
      unit_file(&u, m, file_index, file, dir);
      return *file != NULL;
    }
    r = next;
  }
  return false;
}

/* --- what is Kiln's ---------------------------------------------------------------- */
static const char *const libc_names[] = {
  "malloc", "free", "calloc", "realloc", "reallocarray", "aligned_alloc", "posix_memalign", "memalign",
  "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized", "cfree", "__posix_memalign",
};

static bool name_is_kiln(const char *name) {
  if (name == NULL) return false;
  if (strncmp(name, "kiln_", 5) == 0 || strncmp(name, "__libc_", 7) == 0) return true;
  for (size_t i = 0; i < sizeof libc_names / sizeof libc_names[0]; i++)
    if (strcmp(name, libc_names[i]) == 0) return true;
  return false;
}

/* Kiln's sources are the directory of this file (CMake passes absolute
 * paths, so __FILE__ is /.../src/check_symbols.c). */
static bool dir_is_kiln(const char *dir, const char *file) {
  static const char self[] = __FILE__;
  const char *slash = strrchr(self, '/');
  if (slash == NULL) return false;
  size_t len = (size_t)(slash - self);
  if (file != NULL && file[0] == '/') return strncmp(file, self, len) == 0 && file[len] == '/';
  return dir != NULL && strncmp(dir, self, len) == 0 && dir[len] == '\0';
}

void kiln_symbolize(uintptr_t addr, kiln_symbol_t *out) {
  memset(out, 0, sizeof *out);
  out->module = "?";
  out->module_off = addr;
  Dl_info info;
  module_t *m = module_for(addr, &info);
  if (m == NULL) return;
  uintptr_t pc = addr - 1; /* a return address: the call is the byte before */
  out->module = m->name;
  out->module_off = addr - m->base;
  uintptr_t vaddr = pc - m->bias;
  out->function = module_symbol(m, vaddr, STT_FUNC, &out->function_off);
  if (out->function == NULL && info.dli_sname != NULL) {
    out->function = info.dli_sname;
    out->function_off = addr - (uintptr_t)info.dli_saddr;
  } else {
    out->function_off++; /* offsets of the return address, as dladdr gives them */
  }
  const char *file = NULL, *dir = NULL;
  if (module_line(m, vaddr, &file, &dir, &out->line)) out->file = base_name(file);
  if (m->is_kiln) out->is_kiln = true;
  else if (m->base == kiln_base) out->is_kiln = file != NULL ? dir_is_kiln(dir, file) : name_is_kiln(out->function);
}

bool kiln_symbolize_data(uintptr_t addr, const char **module, const char **symbol) {
  Dl_info info;
  module_t *m = module_for(addr, &info);
  if (m == NULL) return false;
  uintptr_t offset;
  *module = m->name;
  *symbol = module_symbol(m, addr - m->bias, STT_OBJECT, &offset);
  if (*symbol == NULL) *symbol = info.dli_sname;
  return true;
}

/* --- formatting ---------------------------------------------------------------------- */
static void format_symbol(char *buf, size_t size, size_t *len, const kiln_symbol_t *s) {
  if (s->file != NULL && s->function != NULL) kiln_buf_printf(buf, size, len, "%s:%u (%s)", s->file, s->line, s->function);
  else if (s->file != NULL) kiln_buf_printf(buf, size, len, "%s:%u", s->file, s->line);
  else if (s->function != NULL) kiln_buf_printf(buf, size, len, "%s+0x%zx (%s)", s->function, (size_t)s->function_off, s->module);
  else kiln_buf_printf(buf, size, len, "%s+0x%zx", s->module, (size_t)s->module_off);
}

/* Index of the first frame that is not Kiln's (depth if none). */
static size_t first_program_frame(const uintptr_t *frames, size_t depth, kiln_symbol_t *sym) {
  for (size_t i = 0; i < depth; i++) {
    kiln_symbolize(frames[i], sym);
    if (!sym->is_kiln) return i;
  }
  return depth;
}

bool kiln_stack_from_loader(kiln_stack_id_t id) {
  const uintptr_t *frames;
  size_t depth = kiln_stack_frames(id, &frames);
  kiln_symbol_t sym;
  if (first_program_frame(frames, depth, &sym) == depth) return false;
  return strncmp(sym.module, "ld-", 3) == 0 || strcmp(sym.module, "ld.so") == 0;
}

void kiln_format_site(char *buf, size_t size, kiln_stack_id_t id) {
  size_t len = 0;
  buf[0] = '\0';
  const uintptr_t *frames;
  size_t depth = kiln_stack_frames(id, &frames);
  kiln_symbol_t sym;
  if (first_program_frame(frames, depth, &sym) == depth) {
    kiln_buf_printf(buf, size, &len, "an unknown place");
    return;
  }
  format_symbol(buf, size, &len, &sym);
}

void kiln_print_stack(const char *title, kiln_stack_id_t id) {
  const uintptr_t *frames;
  size_t depth = kiln_stack_frames(id, &frames);
  kiln_symbol_t sym;
  size_t i = first_program_frame(frames, depth, &sym);
  if (i == depth) return;
  kiln_message("    %s:", title);
  for (unsigned n = 0; i < depth; i++, n++) {
    if (n > 0) kiln_symbolize(frames[i], &sym);
    char line[256];
    size_t len = 0;
    kiln_buf_printf(line, sizeof line, &len, "      #%u ", n);
    format_symbol(line, sizeof line, &len, &sym);
    kiln_message("%s", line);
    if (sym.function != NULL && strcmp(sym.function, "main") == 0) break;
  }
}
