package io.veggur.vmi.symbols.btf;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;

/**
 * What the Linux model needs from any real kernel's BTF, checked against that kernel, and everything the parser
 * reports cross-checked against bpftool's reading of the same file. No offset is hard-coded: they differ per build.
 */
abstract class KernelBtfContract {
    private static final Map<Path, BpftoolRawDump> DUMPS = new ConcurrentHashMap<>();

    abstract Btf btf();

    /** The raw BTF file, for bpftool. */
    abstract Path btfFile();

    BpftoolRawDump bpftool() throws Exception {
        if (!BpftoolRawDump.available()) {
            throw new IllegalStateException("bpftool is not installed; ./veggur test installs it (Debian: bpftool)");
        }
        BpftoolRawDump dump = DUMPS.get(btfFile());
        if (dump == null) {
            dump = BpftoolRawDump.of(btfFile());
            DUMPS.put(btfFile(), dump);
        }
        return dump;
    }

    @Test
    void member_taskStructCoreMembers_haveTheTypesTheLinuxModelAssumes() throws Exception {
        StructLayout task = btf().struct("task_struct");

        assertThat(task.member("pid").type().kind()).isEqualTo(Kind.INT);
        assertThat(task.member("pid").type().size()).isEqualTo(4);
        assertThat(task.member("tgid").type().size()).isEqualTo(4);
        assertThat(task.member("__state").type().size()).isEqualTo(4);
        assertThat(task.member("flags").type().size()).isEqualTo(4);
        TypeRef comm = task.member("comm").type();
        assertThat(comm.kind()).isEqualTo(Kind.ARRAY);
        assertThat(comm.elementCount()).isEqualTo(16);
        assertThat(comm.target().name()).isEqualTo("char");
        TypeRef tasks = task.member("tasks").type();
        assertThat(tasks.name()).isEqualTo("list_head");
        assertThat(tasks.size()).isEqualTo(16);
        assertThat(task.member("real_parent").type().isPointerToStruct("task_struct")).isTrue();
        assertThat(task.member("real_cred").type().isPointerToStruct("cred")).isTrue();
        assertThat(task.member("cred").type().isPointerToStruct("cred")).isTrue();
        assertThat(task.member("mm").type().isPointerToStruct("mm_struct")).isTrue();
        assertThat(task.member("pid").byteOffset()).isLessThan(task.size());
        assertThat(task.member("comm").byteOffset() + 16).isLessThanOrEqualTo(task.size());
    }

    @Test
    void member_credUidAndMmPgd_reachedThroughEmbeddedStructs() throws Exception {
        StructLayout cred = btf().struct("cred");
        StructLayout mm = btf().struct("mm_struct");

        assertThat(cred.member("uid").type().kind()).isEqualTo(Kind.STRUCT);
        assertThat(cred.member("uid.val").type().size()).isEqualTo(4);
        assertThat(cred.member("uid.val").byteOffset()).isEqualTo(cred.member("uid").byteOffset());
        assertThat(cred.member("euid.val").byteOffset()).isGreaterThan(cred.member("uid.val").byteOffset());
        assertThat(mm.member("pgd").type().kind()).isEqualTo(Kind.PTR);
        assertThat(mm.member("pgd").type().target().size()).isEqualTo(8);
    }

    @Test
    void member_moduleAndListHead_presentWithExpectedTypes() throws Exception {
        StructLayout module = btf().struct("module");
        StructLayout listHead = btf().struct("list_head");

        assertThat(module.member("list").type().name()).isEqualTo("list_head");
        assertThat(module.member("name").type().kind()).isEqualTo(Kind.ARRAY);
        assertThat(module.member("name").type().target().name()).isEqualTo("char");
        assertThat(listHead.size()).isEqualTo(16);
        assertThat(listHead.member("next").byteOffset()).isZero();
        assertThat(listHead.member("prev").byteOffset()).isEqualTo(8);
        assertThat(listHead.member("next").type().isPointerToStruct("list_head")).isTrue();
    }

    @Test
    void type_everyId_resolvesLikeBpftool() throws Exception {
        BpftoolRawDump dump = bpftool();
        Btf btf = btf();

        assertThat(btf.typeCount()).isEqualTo(dump.lastId);
        List<String> mismatches = new ArrayList<>();
        for (int id = 1; id <= btf.typeCount(); id++) {
            TypeRef ours = btf.type(id);
            int expected = dump.strip(id);
            String expectedKind = expected == 0 ? "VOID" : dump.types.get(expected).kind();
            if (ours.id() != expected || !ours.kind().name().equals(expectedKind)) {
                mismatches.add("type " + id + ": ours " + ours.id() + " " + ours.kind() + ", bpftool " + expected
                        + " " + expectedKind);
            }
        }
        assertThat(mismatches).as("first of %d", mismatches.size()).isEmpty();
    }

    @Test
    void struct_everyNamedStruct_sizeAndMemberOffsetsMatchBpftool() throws Exception {
        BpftoolRawDump dump = bpftool();
        Btf btf = btf();
        List<String> mismatches = new ArrayList<>();
        int checked = 0;

        for (Map.Entry<String, Integer> entry : dump.firstByKindAndName.entrySet()) {
            if (!entry.getKey().startsWith("STRUCT ") || entry.getKey().equals("STRUCT ")) {
                continue;
            }
            String name = entry.getKey().substring("STRUCT ".length());
            int id = entry.getValue();
            assertThat(btf.typeId(name, Kind.STRUCT)).as(name).hasValue(id);
            StructLayout layout = btf.struct(name);
            if (layout.size() != dump.types.get(id).size()) {
                mismatches.add(name + " size " + layout.size() + " vs " + dump.types.get(id).size());
            }
            for (BpftoolRawDump.MemberLine expected : dump.flattened(id).values()) {
                Member ours = layout.member(expected.name());
                checked++;
                if (ours.bitOffset() != expected.bitsOffset() || ours.bitfieldSize() != expected.bitfieldSize()
                        || ours.type().id() != dump.strip(expected.typeId())) {
                    mismatches.add(name + "." + expected.name() + ": ours " + ours + ", bpftool " + expected);
                }
            }
        }
        assertThat(mismatches).as("first of %d", mismatches.size()).isEmpty();
        assertThat(checked).isGreaterThan(10_000);
    }

    @Test
    void enumValue_everyNamedEnum_matchesBpftool() throws Exception {
        BpftoolRawDump dump = bpftool();
        List<String> mismatches = new ArrayList<>();
        int checked = 0;

        for (Map.Entry<String, Integer> entry : dump.firstByKindAndName.entrySet()) {
            String key = entry.getKey();
            if (!(key.startsWith("ENUM ") || key.startsWith("ENUM64 ")) || key.endsWith(" ")) {
                continue;
            }
            String name = key.substring(key.indexOf(' ') + 1);
            for (Map.Entry<String, Long> value : dump.enumerators.getOrDefault(entry.getValue(), Map.of()).entrySet()) {
                checked++;
                long ours = btf().enumValue(name, value.getKey()).orElseThrow();
                if (ours != value.getValue()) {
                    mismatches.add(name + "." + value.getKey() + ": ours " + ours + ", bpftool " + value.getValue());
                }
            }
        }
        assertThat(mismatches).as("first of %d", mismatches.size()).isEmpty();
        assertThat(checked).isGreaterThan(1_000);
    }
}
