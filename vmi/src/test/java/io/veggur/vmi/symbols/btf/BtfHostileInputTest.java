package io.veggur.vmi.symbols.btf;

import static io.veggur.vmi.symbols.btf.BtfBuilder.bitfield;
import static io.veggur.vmi.symbols.btf.BtfBuilder.info;
import static io.veggur.vmi.symbols.btf.BtfBuilder.member;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.Timeout.ThreadMode;

/**
 * BTF from a guest is attacker-controlled: malformed blobs must fail with a BtfException that says where, never
 * with another exception, a huge allocation or a hang.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = ThreadMode.SEPARATE_THREAD)
class BtfHostileInputTest {

    private static byte[] validBlob() {
        BtfBuilder b = new BtfBuilder();
        b.struct("s", 8, member("a", b.integer("int", 4, true), 0));
        return b.build();
    }

    private static ByteBuffer patched(byte[] blob, int offset, int value) {
        ByteBuffer buffer = ByteBuffer.wrap(blob.clone()).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(offset, value);
        return buffer;
    }

    private static void assertRejected(ByteBuffer blob, String... messageParts) {
        var thrown = assertThatThrownBy(() -> Btf.parse(blob)).isInstanceOf(BtfException.class);
        for (String part : messageParts) {
            thrown.hasMessageContaining(part);
        }
    }

    @Test
    void parse_truncatedHeader_throws() {
        byte[] blob = validBlob();
        for (int length = 0; length < 24; length++) {
            assertRejected(ByteBuffer.wrap(Arrays.copyOf(blob, length)), "header");
        }
    }

    @Test
    void parse_bigEndianMagic_throwsSayingBigEndian() {
        byte[] blob = validBlob();
        blob[0] = (byte) 0xEB;
        blob[1] = (byte) 0x9F;

        assertRejected(ByteBuffer.wrap(blob), "big-endian");
    }

    @Test
    void parse_badMagicVersionOrFlags_throws() {
        byte[] blob = validBlob();
        assertRejected(patched(blob, 0, 0x01001234), "magic");
        assertRejected(patched(blob, 0, 0x0002EB9F), "version 2");
        assertRejected(patched(blob, 0, 0x0101EB9F), "flags");
    }

    @Test
    void parse_headerLengthPastEnd_throws() {
        byte[] blob = validBlob();

        assertRejected(patched(blob, 4, blob.length + 1), "header length");
        assertRejected(patched(blob, 4, 23), "header length");
        assertRejected(patched(blob, 4, -1), "header length 4294967295");
    }

    @Test
    void parse_sectionLengthsPastEnd_throwWithoutAllocating() {
        byte[] blob = validBlob();

        assertRejected(patched(blob, 12, 0x7FFFFFF0), "type section");
        assertRejected(patched(blob, 12, -4), "type section");
        assertRejected(patched(blob, 8, -16), "type section");
        assertRejected(patched(blob, 20, -1), "string section");
        assertRejected(patched(blob, 16, 0x7FFFFFFF), "string section");
    }

    @Test
    void parse_stringSectionWithoutFinalNul_throws() {
        byte[] blob = validBlob();
        blob[blob.length - 1] = 'x';

        assertRejected(ByteBuffer.wrap(blob), "NUL");
    }

    @Test
    void parse_typeSectionCutInsideRecord_throwsNamingType() {
        BtfBuilder b = new BtfBuilder();
        b.integer("int", 4, true);
        b.record(0, info(Kind.PTR, 0, false));

        assertRejected(ByteBuffer.wrap(b.build()), "type 2", "needs 12");
    }

    @Test
    void parse_typeSectionLengthNotMultipleOfFour_throws() {
        byte[] blob = validBlob();
        ByteBuffer header = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        int typeLength = header.getInt(12);
        header.putInt(12, typeLength - 2);

        assertRejected(ByteBuffer.wrap(blob), "multiple of 4");
    }

    @Test
    void parse_hugeVlenWithoutData_throwsNamingType() {
        BtfBuilder b = new BtfBuilder();
        b.integer("int", 4, true);
        b.record(b.string("big"), info(Kind.STRUCT, 0xFFFF, false), 8, 0, 1, 0);

        assertRejected(ByteBuffer.wrap(b.build()), "type 2", "STRUCT", "vlen 65535");
    }

    @Test
    void parse_unknownKind_throwsNamingType() {
        for (int kind : new int[] {0, 20, 31}) {
            BtfBuilder b = new BtfBuilder();
            b.record(0, kind << 24, 0);

            assertRejected(ByteBuffer.wrap(b.build()), "type 1", "unknown kind " + kind);
        }
    }

    @Test
    void parse_typeNameOffsetOutOfRange_throwsNamingType() {
        BtfBuilder b = new BtfBuilder();
        b.integer("int", 4, true);
        b.record(1_000_000, info(Kind.STRUCT, 0, false), 0);

        assertRejected(ByteBuffer.wrap(b.build()), "type 2", "name offset 1000000");
    }

    @Test
    void parse_overlongName_throws() {
        BtfBuilder b = new BtfBuilder();
        b.struct("x".repeat(Btf.MAX_NAME_LENGTH + 1), 0);

        assertRejected(ByteBuffer.wrap(b.build()), "type 1", "longer than");
    }

    @Test
    void member_nameOffsetOutOfRange_throwsNamingStruct() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int intType = b.integer("int", 4, true);
        int s = b.record(b.string("s"), info(Kind.STRUCT, 1, false), 4, 0x7FFFFFFF, intType, 0);
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.struct("s").member("a"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("type " + s)
                .hasMessageContaining("string offset 2147483647");
    }

    @Test
    void member_typeIdOutOfRange_throwsNamingStruct() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int s = b.record(b.string("s"), info(Kind.STRUCT, 1, false), 4, b.string("a"), 99, 0);
        b.record(b.string("p"), info(Kind.PTR, 0, false), -7);
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.struct("s").member("a"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("type " + s + " refers to type id 99");
        assertThatThrownBy(() -> btf.type(2)).isInstanceOf(BtfException.class).hasMessageContaining("4294967289");
        assertThatThrownBy(() -> btf.type(3)).isInstanceOf(BtfException.class).hasMessageContaining("out of range");
        assertThatThrownBy(() -> btf.type(-1)).isInstanceOf(BtfException.class);
    }

    @Test
    void type_cyclicTypedefChain_throwsInsteadOfLooping() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int first = b.nextId();
        b.typedef("a", first + 1);
        b.modifier(Kind.CONST, first + 2);
        b.modifier(Kind.VOLATILE, first + 3);
        b.typedef("b", first);
        b.struct("s", 4, member("x", first, 0));
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.type(first)).isInstanceOf(BtfException.class).hasMessageContaining("cycle");
        assertThatThrownBy(() -> btf.struct("s").member("x")).isInstanceOf(BtfException.class);
    }

    @Test
    void type_cyclicPointerAndArrayChain_throwsInsteadOfRecursingForever() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int pointer = b.pointer(b.nextId() + 1);
        b.array(pointer, pointer, 2);
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.type(pointer)).isInstanceOf(BtfException.class).hasMessageContaining("cycle");
    }

    @Test
    void member_structContainingItselfAnonymously_throwsInsteadOfLooping() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int intType = b.integer("int", 4, true);
        int self = b.nextId();
        b.struct("s", 8, member("", self, 0), member("x", intType, 0));
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.struct("s").hasMember("x"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("cycle");
    }

    @Test
    void member_wideFanOutOfAnonymousMembers_boundedByVisitBudget() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int intType = b.integer("int", 4, true);
        int levels = 4;
        int first = b.nextId();
        for (int level = 0; level < levels; level++) {
            boolean last = level == levels - 1;
            int[] words = new int[3 + 3 * 0xFFFF];
            words[0] = b.string("level" + level);
            words[1] = info(Kind.STRUCT, 0xFFFF, false);
            words[2] = 8;
            for (int i = 0; i < 0xFFFF; i++) {
                words[3 + 3 * i] = last ? b.string("n") : 0;
                words[3 + 3 * i + 1] = last ? intType : first + level + 1;
            }
            b.record(words);
        }
        Btf btf = b.parse();

        assertThat(btf.struct("level0").member("n").byteOffset()).isZero();
        assertThatThrownBy(() -> btf.struct("level0").member("missing"))
                .isInstanceOf(BtfException.class)
                .hasMessageContaining("visited more than");
    }

    @Test
    void type_nestedArraysOverflowingSize_throw() throws Exception {
        BtfBuilder b = new BtfBuilder();
        int u64 = b.integer("long long unsigned int", 8, false);
        int inner = b.array(u64, u64, -1);
        int outer = b.array(inner, u64, -1);
        b.struct("s", 8, member("a", outer, 0));
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.type(outer)).isInstanceOf(BtfException.class).hasMessageContaining("overflows");
        assertThat(btf.type(inner).size()).isEqualTo(0xFFFFFFFFL * 8);
    }

    @Test
    void enumValue_enumeratorNameOffsetOutOfRange_throws() throws Exception {
        BtfBuilder b = new BtfBuilder();
        b.record(b.string("e"), info(Kind.ENUM, 1, false), 4, -1, 5);
        Btf btf = b.parse();

        assertThatThrownBy(() -> btf.enumValue("e", "A")).isInstanceOf(BtfException.class);
        assertThatThrownBy(() -> btf.enumValue(null, "A")).isInstanceOf(BtfException.class);
    }

    /** A blob using every kind, with the names {@link BtfFuzzing} queries. */
    private static byte[] richBlob() {
        BtfBuilder b = new BtfBuilder();
        int intType = b.integer("int", 4, true);
        int uint = b.integer("unsigned int", 4, false);
        int charType = b.integer("char", 1, true);
        int inner = b.union("", 4, member("x", uint, 0), member("y", intType, 0));
        int arr = b.array(charType, intType, 16);
        int typedef = b.typedef("u_t", b.modifier(Kind.VOLATILE, b.modifier(Kind.CONST, uint)));
        int self = b.nextId() + 1;
        int pointer = b.pointer(self);
        b.struct("s", 40, bitfield("a", uint, 0, 3), bitfield("b", typedef, 3, 5), member("c", intType, 32),
                member("u", inner, 64), member("", inner, 96), member("arr", arr, 128), member("next", pointer, 256));
        b.enumeration("e", true, "A", 1, "B", -2);
        b.enumeration("", false, "E1", 7);
        b.enum64("e64", false, "W", 1L << 40);
        int proto = b.funcProto(intType, intType, pointer);
        int func = b.func("f", proto);
        int var = b.variable("v", typedef);
        b.datasec(".data", 8, var, 0, 4);
        b.floating("double", 8);
        b.forward("fwd");
        b.declTag("tag", func, -1);
        b.typeTag("user", pointer);
        b.modifier(Kind.RESTRICT, pointer);
        return b.build();
    }

    @Test
    void parseAndQuery_randomlyCorruptedBlobs_onlyBtfExceptionOrSuccess() {
        byte[] valid = richBlob();
        long seed = System.nanoTime();
        System.out.println("BtfHostileInputTest fuzz seed " + seed);
        Random random = new Random(seed);
        int parsed = 0;
        for (int iteration = 0; iteration < 50_000; iteration++) {
            byte[] corrupt = mutate(valid, random);
            try {
                Btf btf = Btf.parse(ByteBuffer.wrap(corrupt));
                parsed++;
                BtfFuzzing.query(btf, random);
            } catch (BtfException expected) {
                // malformed input is allowed to be rejected, as long as it is rejected this way
            } catch (Throwable t) {
                fail("seed " + seed + ", iteration " + iteration + ": " + t, t);
            }
        }
        System.out.println("fuzz: " + parsed + " of 50000 corrupted blobs parsed");
    }

    /** Random bytes flipped, or a whole word set to a value likely to hit an edge, or the blob cut short. */
    private static byte[] mutate(byte[] valid, Random random) {
        byte[] corrupt = valid.clone();
        int mutations = 1 + random.nextInt(4);
        for (int i = 0; i < mutations && corrupt.length >= 4; i++) {
            switch (random.nextInt(3)) {
                case 0 -> corrupt[random.nextInt(corrupt.length)] ^= (byte) (1 << random.nextInt(8));
                case 1 -> {
                    int[] edges = {0, 1, -1, 0xFFFF, 0x7FFFFFFF, 0x80000000, random.nextInt(64), 1 << 24};
                    int at = random.nextInt(corrupt.length / 4) * 4;
                    ByteBuffer.wrap(corrupt).order(ByteOrder.LITTLE_ENDIAN).putInt(at, edges[random.nextInt(8)]);
                }
                default -> corrupt = Arrays.copyOf(corrupt, random.nextInt(corrupt.length + 1));
            }
        }
        return corrupt;
    }
}
