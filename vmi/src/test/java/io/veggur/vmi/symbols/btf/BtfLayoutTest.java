package io.veggur.vmi.symbols.btf;

import static io.veggur.vmi.symbols.btf.BtfBuilder.bitfield;
import static io.veggur.vmi.symbols.btf.BtfBuilder.member;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** Layout queries against small hand-built BTF blobs, one format feature at a time. */
class BtfLayoutTest {

    /** A cut-down kernel: task_struct with embedded, anonymous, array, pointer and bitfield members. */
    private static final class MiniKernel {
        final BtfBuilder b = new BtfBuilder();
        final int intType = b.integer("int", 4, true);
        final int uintType = b.integer("unsigned int", 4, false);
        final int charType = b.integer("char", 1, true);
        final int u64Type = b.integer("long long unsigned int", 8, false);
        final int listHeadPtr = b.pointer(b.nextId() + 1);
        final int listHead = b.struct("list_head", 16, member("next", listHeadPtr, 0), member("prev", listHeadPtr, 64));
        final int uidT = b.typedef("uid_t", uintType);
        final int kuidStruct = b.struct("", 4, member("val", uidT, 0));
        final int kuidT = b.typedef("kuid_t", kuidStruct);
        final int cred = b.struct("cred", 16, member("usage", intType, 0), member("uid", kuidT, 32),
                member("gid", kuidT, 64));
        final int constCred = b.modifier(Kind.CONST, cred);
        final int credPtr = b.pointer(constCred);
        final int sched = b.struct("sched_entity", 16, member("load", u64Type, 0), member("exec_start", u64Type, 64));
        final int comm = b.array(charType, intType, 16);
        final int flagsUnion = b.union("", 8, member("flags", uintType, 0), member("raw", u64Type, 0));
        final int inner = b.struct("", 16, member("", flagsUnion, 0), member("pid", intType, 64),
                member("tgid", intType, 96));
        final int pidT = b.typedef("pid_t", intType);
        final int volatilePid = b.modifier(Kind.VOLATILE, b.modifier(Kind.CONST, pidT));
        final int task = b.struct("task_struct", 96,
                member("", inner, 0),
                member("se", sched, 128),
                member("tasks", listHead, 256),
                member("comm", comm, 384),
                member("real_cred", credPtr, 512),
                member("session", volatilePid, 576),
                member("stack", b.pointer(0), 640));
    }

    @Test
    void member_dottedPathThroughEmbeddedStruct_addsOffsets() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        Member execStart = task.member("se.exec_start");

        assertThat(execStart.byteOffset()).isEqualTo(16 + 8);
        assertThat(execStart.type().kind()).isEqualTo(Kind.INT);
        assertThat(execStart.type().size()).isEqualTo(8);
    }

    @Test
    void member_insideAnonymousStructAndUnion_foundTransparently() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        assertThat(task.member("pid").byteOffset()).isEqualTo(8);
        assertThat(task.member("tgid").byteOffset()).isEqualTo(12);
        assertThat(task.member("flags").byteOffset()).isZero();
        assertThat(task.member("raw").type().size()).isEqualTo(8);
        assertThat(task.member("pid").type().size()).isEqualTo(4);
    }

    @Test
    void member_typedefToAnonymousStruct_dottedPathReachesField() throws Exception {
        Btf btf = new MiniKernel().b.parse();
        StructLayout cred = btf.struct("cred");

        Member uid = cred.member("uid");
        Member uidVal = cred.member("uid.val");

        assertThat(uid.type().kind()).isEqualTo(Kind.STRUCT);
        assertThat(uid.type().name()).isEmpty();
        assertThat(uidVal.byteOffset()).isEqualTo(4);
        assertThat(cred.member("gid.val").byteOffset()).isEqualTo(8);
        assertThat(uidVal.type().kind()).isEqualTo(Kind.INT);
    }

    @Test
    void member_charArray_reportsElementTypeAndCount() throws Exception {
        Member comm = new MiniKernel().b.parse().struct("task_struct").member("comm");

        assertThat(comm.byteOffset()).isEqualTo(48);
        assertThat(comm.type().kind()).isEqualTo(Kind.ARRAY);
        assertThat(comm.type().elementCount()).isEqualTo(16);
        assertThat(comm.type().target().name()).isEqualTo("char");
        assertThat(comm.type().target().size()).isEqualTo(1);
        assertThat(comm.type().size()).isEqualTo(16);
    }

    @Test
    void member_pointerThroughConst_resolvesTargetStruct() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        TypeRef realCred = task.member("real_cred").type();
        TypeRef stack = task.member("stack").type();

        assertThat(realCred.kind()).isEqualTo(Kind.PTR);
        assertThat(realCred.size()).isEqualTo(8);
        assertThat(realCred.isPointerToStruct("cred")).isTrue();
        assertThat(realCred.target().size()).isEqualTo(16);
        assertThat(stack.target().kind()).isEqualTo(Kind.VOID);
    }

    @Test
    void member_qualifiedTypedefChain_strippedToInt() throws Exception {
        Member session = new MiniKernel().b.parse().struct("task_struct").member("session");

        assertThat(session.type().kind()).isEqualTo(Kind.INT);
        assertThat(session.type().name()).isEqualTo("int");
        assertThat(session.type().size()).isEqualTo(4);
    }

    @Test
    void member_embeddedListHead_isStructByName() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        Member tasks = task.member("tasks");

        assertThat(tasks.type().kind()).isEqualTo(Kind.STRUCT);
        assertThat(tasks.type().name()).isEqualTo("list_head");
        assertThat(tasks.type().size()).isEqualTo(16);
        assertThat(task.member("tasks.prev").byteOffset()).isEqualTo(32 + 8);
    }

    @Test
    void member_pathThroughPointer_throwsNamingThePointer() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        assertThatThrownBy(() -> task.member("real_cred.uid"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("real_cred")
                .hasMessageContaining("pointer");
    }

    @Test
    void member_missing_throwsNamingStructAndPath() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        assertThat(task.hasMember("state")).isFalse();
        assertThat(task.hasMember("se.exec_start")).isTrue();
        assertThat(task.hasMember("se.nope")).isFalse();
        assertThatThrownBy(() -> task.member("state"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("task_struct")
                .hasMessageContaining("state");
    }

    @Test
    void member_malformedPath_throwsIllegalArgument() throws Exception {
        StructLayout task = new MiniKernel().b.parse().struct("task_struct");

        for (String path : new String[] {"", "se.", ".se", "comm[", "comm[x]", "comm[-1]", "comm]"}) {
            assertThatThrownBy(() -> task.member(path)).as(path).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void member_bitfieldsWithKindFlag_reportWidthAndBitOffset() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int uint = b.integer("unsigned int", 4, false);
        b.struct("flags", 8, bitfield("a", uint, 0, 1), bitfield("b", uint, 1, 3), member("c", uint, 32));
        StructLayout flags = b.parse().struct("flags");

        Member a = flags.member("a");
        Member bField = flags.member("b");
        Member c = flags.member("c");

        assertThat(a.bitfieldSize()).isEqualTo(1);
        assertThat(a.bitOffset()).isZero();
        assertThat(bField.bitfieldSize()).isEqualTo(3);
        assertThat(bField.bitOffset()).isEqualTo(1);
        assertThat(bField.isBitfield()).isTrue();
        assertThat(c.isBitfield()).isFalse();
        assertThat(c.byteOffset()).isEqualTo(4);
        assertThatThrownBy(bField::byteOffset).isInstanceOf(BtfException.class).hasMessageContaining("bit offset 1");
    }

    @Test
    void member_bitfieldInIntEncodingWithoutKindFlag_addsIntBitOffset() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int fourBits = b.integerEncoded("unsigned int", 4, 4, 2);
        b.struct("old", 16, member("x", fourBits, 100));

        Member x = b.parse().struct("old").member("x");

        assertThat(x.bitOffset()).isEqualTo(102);
        assertThat(x.bitfieldSize()).isEqualTo(4);
    }

    @Test
    void member_arrayElementPath_addsIndexTimesElementSize() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int uint = b.integer("unsigned int", 4, false);
        int memory = b.struct("module_memory", 16, member("base", b.pointer(0), 0), member("size", uint, 64));
        b.struct("module", 16 + 7 * 16, member("state", uint, 0), member("mem", b.array(memory, uint, 7), 128));
        StructLayout module = b.parse().struct("module");

        Member mem = module.member("mem");

        assertThat(mem.type().elementCount()).isEqualTo(7);
        assertThat(mem.type().target().name()).isEqualTo("module_memory");
        assertThat(module.member("mem[0].size").byteOffset()).isEqualTo(16 + 8);
        assertThat(module.member("mem[3].size").byteOffset()).isEqualTo(16 + 3 * 16 + 8);
        assertThat(module.member("mem[6]").type().name()).isEqualTo("module_memory");
        assertThatThrownBy(() -> module.member("mem[7].size"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("out of bounds");
        assertThatThrownBy(() -> module.member("state[0]")).isInstanceOf(BtfException.class);
    }

    @Test
    void member_multiDimensionalAndFlexibleArrays_indexed() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int u16 = b.integer("short unsigned int", 2, false);
        int row = b.array(u16, u16, 3);
        b.struct("grid", 8 + 2 * 6, member("n", b.integer("long int", 8, true), 0),
                member("cells", b.array(row, u16, 2), 64), member("tail", b.array(u16, u16, 0), 160));
        StructLayout grid = b.parse().struct("grid");

        assertThat(grid.member("cells").type().size()).isEqualTo(12);
        assertThat(grid.member("cells[1][2]").byteOffset()).isEqualTo(8 + 6 + 4);
        assertThat(grid.member("tail[5]").byteOffset()).isEqualTo(20 + 10);
    }

    @Test
    void enumValue_namedSignedUnsignedAnd64Bit_decoded() throws Exception {
        BtfBuilder b = new BtfBuilder();
        b.enumeration("mod_mem_type", true, "MOD_TEXT", 0, "MOD_DATA", 1, "MOD_INVALID", -1);
        b.enumeration("", false, "ANON_BIG", 0xFFFFFFFE);
        b.enum64("wide", true, "W_NEG", -5L, "W_BIG", 1L << 40);
        b.enum64("uwide", false, "U_MAX", -1L);
        Btf btf = b.parse();

        assertThat(btf.enumValue("mod_mem_type", "MOD_DATA")).hasValue(1);
        assertThat(btf.enumValue("mod_mem_type", "MOD_INVALID")).hasValue(-1);
        assertThat(btf.enumValue(null, "MOD_TEXT")).hasValue(0);
        assertThat(btf.enumValue(null, "ANON_BIG")).hasValue(0xFFFFFFFEL);
        assertThat(btf.enumValue("wide", "W_NEG")).hasValue(-5);
        assertThat(btf.enumValue("wide", "W_BIG")).hasValue(1L << 40);
        assertThat(btf.enumValue(null, "U_MAX")).hasValue(-1L);
        assertThat(btf.enumValue("mod_mem_type", "W_NEG")).isEqualTo(OptionalLong.empty());
        assertThat(btf.enumValue("nope", "MOD_TEXT")).isEqualTo(OptionalLong.empty());
    }

    @Test
    void typeId_sameNameDifferentKinds_distinguishedAndLowestIdWins() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int first = b.struct("foo", 4);
        int typedef = b.typedef("foo", first);
        b.struct("foo", 8);
        int tag = b.declTag("foo", first, -1);
        Btf btf = b.parse();

        assertThat(btf.typeId("foo", Kind.STRUCT)).hasValue(first);
        assertThat(btf.typeId("foo", Kind.TYPEDEF)).hasValue(typedef);
        assertThat(btf.typeId("foo", Kind.UNION)).isEqualTo(OptionalInt.empty());
        assertThat(btf.typeId("foo", Kind.DECL_TAG)).isEqualTo(OptionalInt.empty());
        assertThat(btf.typeId("fo", Kind.STRUCT)).isEqualTo(OptionalInt.empty());
        assertThat(btf.type(tag).kind()).isEqualTo(Kind.DECL_TAG);
        assertThat(btf.sizeOf("foo")).isEqualTo(4);
    }

    @Test
    void struct_missing_throwsNamingIt() throws Exception {
        Btf btf = new MiniKernel().b.parse();

        assertThatThrownBy(() -> btf.struct("mm_struct"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("mm_struct");
    }

    @Test
    void parse_everyKind_framedAndResolvable() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int intType = b.integer("int", 4, true);
        int restrict = b.modifier(Kind.RESTRICT, b.pointer(intType));
        int tagged = b.typeTag("user", intType);
        int proto = b.funcProto(intType, intType, restrict);
        int func = b.func("do_thing", proto);
        int var = b.variable("jiffies", tagged);
        int datasec = b.datasec(".data", 8, var, 0, 4);
        int floating = b.floating("double", 8);
        int forward = b.forward("opaque");
        b.declTag("bpf_kfunc", func, -1);
        int wide = b.enum64("big", false, "X", 1L, "Y", 2L);
        int after = b.struct("after_all_kinds", 4, member("x", tagged, 0));
        Btf btf = b.parse();

        assertThat(btf.typeCount()).isEqualTo(after);
        assertThat(btf.type(restrict).kind()).isEqualTo(Kind.PTR);
        assertThat(btf.type(tagged).kind()).isEqualTo(Kind.INT);
        assertThat(btf.type(proto).kind()).isEqualTo(Kind.FUNC_PROTO);
        assertThat(btf.type(func).name()).isEqualTo("do_thing");
        assertThat(btf.typeId("jiffies", Kind.VAR)).hasValue(var);
        assertThat(btf.type(datasec).size()).isEqualTo(8);
        assertThat(btf.type(floating).size()).isEqualTo(8);
        assertThat(btf.type(forward).kind()).isEqualTo(Kind.FWD);
        assertThat(btf.type(wide).size()).isEqualTo(8);
        assertThat(btf.type(0).kind()).isEqualTo(Kind.VOID);
        assertThat(btf.enumValue("big", "Y")).hasValue(2);
        assertThat(btf.struct("after_all_kinds").member("x").byteOffset()).isZero();
    }

    @Test
    void parse_headerLongerThan24Bytes_sectionsCountFromItsEnd() throws Exception {
        byte[] plain = new MiniKernel().b.build();
        ByteBuffer longer = ByteBuffer.allocate(plain.length + 8).order(ByteOrder.LITTLE_ENDIAN);
        longer.put(plain, 0, 24).put(new byte[8]).put(plain, 24, plain.length - 24).flip();
        longer.putInt(4, 32);

        Btf btf = Btf.parse(longer);

        assertThat(btf.struct("task_struct").member("pid").byteOffset()).isEqualTo(8);
    }

    @Test
    void parse_bufferWithPosition_readsFromPositionAndLeavesItAlone() throws Exception {
        byte[] plain = new MiniKernel().b.build();
        ByteBuffer buffer = ByteBuffer.allocate(plain.length + 5).order(ByteOrder.BIG_ENDIAN);
        buffer.position(5);
        buffer.put(plain).position(5);

        Btf btf = Btf.parse(buffer);

        assertThat(btf.sizeOf("task_struct")).isEqualTo(96);
        assertThat(buffer.position()).isEqualTo(5);
        assertThat(buffer.order()).isEqualTo(ByteOrder.BIG_ENDIAN);
    }
}
