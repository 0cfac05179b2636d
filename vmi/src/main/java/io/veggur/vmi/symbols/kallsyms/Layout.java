package io.veggur.vmi.symbols.kallsyms;

/**
 * The order and widths of the kallsyms arrays as scripts/kallsyms.c emits them into .rodata on x86-64, each array
 * starting on an 8-byte boundary with zero padding in between. Only base-relative offsets are covered (x86-64 has used
 * CONFIG_KALLSYMS_BASE_RELATIVE by default since 4.6; Debian always). Versions are the upstream releases; stable
 * series can carry a later layout (Debian's 6.1.0-56, 6.1.192, has {@link #SEQS_BEFORE_TOKEN_TABLE}).
 */
enum Layout {
    /** 4.6 to 4.19: offsets, relative_base, num_syms (u64), names, markers (u64), token_table, token_index. */
    U64_MARKERS("4.6-4.19"),
    /** 4.20 to 6.1 (commit 80ffbaa5b1bd): as before, but num_syms and the markers are u32. */
    U32_MARKERS("4.20-6.1"),
    /** 6.2 and 6.3 (commit 60443c88f3a8): seqs_of_names (3 bytes per symbol) between markers and token_table. */
    SEQS_BEFORE_TOKEN_TABLE("6.2-6.3"),
    /**
     * 6.4 and later (commit 404bad70fcf7): num_syms, names, markers, token_table, token_index, offsets, relative_base,
     * seqs_of_names. Unchanged until 7.0 dropped relative_base for place-relative offsets (commit a081b5789255).
     */
    OFFSETS_AFTER_TOKEN_INDEX("6.4-6.19");

    final String versions;

    Layout(String versions) {
        this.versions = versions;
    }

    /** The offsets and relative_base come before num_syms rather than after token_index. */
    boolean offsetsFirst() {
        return this != OFFSETS_AFTER_TOKEN_INDEX;
    }
}
