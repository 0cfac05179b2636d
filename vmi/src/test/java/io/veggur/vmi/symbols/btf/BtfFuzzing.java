package io.veggur.vmi.symbols.btf;

import java.util.Random;

/** The queries the fuzz tests run on whatever survived parsing; each may fail only with a BtfException. */
final class BtfFuzzing {
    private BtfFuzzing() {}

    private static final String[][] MEMBERS = {
        {"task_struct", "pid", "comm", "tasks.next", "real_cred", "se.exec_start", "flags", "x", "a", "inner"},
        {"cred", "uid.val", "usage"},
        {"module", "mem[1].size", "list", "name"},
        {"list_head", "next", "prev"},
        {"s", "a", "b", "c", "u.x", "arr[2]", "x"},
    };
    private static final String[] ENUMERATORS = {"MOD_TEXT", "A", "B", "W", "E1"};

    static void query(Btf btf, Random random) {
        for (String[] struct : MEMBERS) {
            for (int i = 1; i < struct.length; i++) {
                String path = struct[i];
                run(() -> {
                    StructLayout layout = btf.struct(struct[0]);
                    if (layout.hasMember(path)) {
                        Member member = layout.member(path);
                        member.byteOffset();
                        member.type().toString();
                    }
                });
            }
        }
        for (String enumerator : ENUMERATORS) {
            run(() -> btf.enumValue(null, enumerator));
            run(() -> btf.enumValue("e", enumerator));
        }
        for (int i = 0; i < 32; i++) {
            int id = random.nextInt(btf.typeCount() + 2);
            run(() -> btf.type(id));
        }
        run(() -> btf.type(-1));
    }

    private interface Query {
        void run() throws BtfException;
    }

    private static void run(Query query) {
        try {
            query.run();
        } catch (BtfException expected) {
            // rejecting corrupt data is the point
        }
    }
}
