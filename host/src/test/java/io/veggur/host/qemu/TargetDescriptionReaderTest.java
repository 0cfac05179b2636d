package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TargetDescriptionReaderTest {
    private final List<String> fetched = new ArrayList<>();

    private RegisterLayout read(Map<String, String> files) throws IOException {
        return TargetDescriptionReader.read(annex -> {
            fetched.add(annex);
            String xml = files.get(annex);
            if (xml == null) {
                throw new QemuProtocolException("no such annex " + annex);
            }
            return xml;
        });
    }

    @Test
    void read_includedFeature_expandsInPlaceWithContinuingRegnums() throws IOException {
        RegisterLayout layout = read(Map.of(
                "target.xml", """
                        <?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">
                        <target><architecture>i386:x86-64</architecture>
                        <xi:include href="core.xml"/><xi:include href="extra.xml"/></target>""",
                "core.xml", """
                        <?xml version="1.0"?><!DOCTYPE feature SYSTEM "gdb-target.dtd">
                        <feature name="core"><flags id="f" size="4"><field name="" start="0" end="1"/></flags>
                        <reg name="a" bitsize="64" regnum="0"/><reg name="b" bitsize="32"/></feature>""",
                "extra.xml", """
                        <feature name="extra"><reg name="c" bitsize="128"/><reg name="d" bitsize="16"/></feature>"""));

        assertThat(layout.registers()).containsExactly(
                new RegisterLayout.Register("a", 64, 0, 0),
                new RegisterLayout.Register("b", 32, 1, 16),
                new RegisterLayout.Register("c", 128, 2, 24),
                new RegisterLayout.Register("d", 16, 3, 56));
        assertThat(layout.offsetOf("c")).isEqualTo(24);
        assertThat(layout.find("d")).get().extracting(RegisterLayout.Register::byteSize).isEqualTo(2);
        assertThat(fetched).containsExactly("target.xml", "core.xml", "extra.xml");
    }

    @Test
    void read_explicitRegnums_orderTheGPacketByNumber() throws IOException {
        RegisterLayout layout = read(Map.of("target.xml", """
                <target><feature name="x"><reg name="hi" bitsize="32" regnum="7"/>
                <reg name="lo" bitsize="64" regnum="2"/><reg name="next" bitsize="8"/></feature></target>"""));

        assertThat(layout.registers()).extracting(RegisterLayout.Register::name).containsExactly("lo", "next", "hi");
        assertThat(layout.offsetOf("hi")).isEqualTo(18);
    }

    @Test
    void read_includeCycle_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of(
                "target.xml", "<target><xi:include href=\"a.xml\"/></target>",
                "a.xml", "<feature><xi:include href=\"target.xml\"/></feature>")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("cycle");
    }

    @Test
    void read_includeNameThatWouldBreakQxfer_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of("target.xml", "<target><xi:include href=\"a:0,10\"/></target>")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("unusable file name");
        assertThat(fetched).containsExactly("target.xml");
    }

    @Test
    void read_externalEntity_isNeverResolved() {
        String xml = """
                <?xml version="1.0"?><!DOCTYPE target [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
                <target><feature><reg name="&secret;" bitsize="64"/></feature></target>""";

        assertThatThrownBy(() -> read(Map.of("target.xml", xml)))
                .isInstanceOf(QemuProtocolException.class)
                .message().doesNotContain("root:");
    }

    @Test
    void read_entityExpansionBomb_throwsProtocolException() {
        StringBuilder dtd = new StringBuilder("<!DOCTYPE target [<!ENTITY e0 \"xxxxxxxxxx\">");
        for (int i = 1; i < 10; i++) {
            dtd.append("<!ENTITY e").append(i).append(" \"").append(("&e" + (i - 1) + ";").repeat(10)).append("\">");
        }
        String xml = dtd + "]><target><feature><reg name=\"&e9;\" bitsize=\"64\"/></feature></target>";

        assertThatThrownBy(() -> read(Map.of("target.xml", xml))).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void read_malformedXml_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of("target.xml", "<target><reg name=\"a\"")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("not well-formed");
    }

    @Test
    void read_badBitsize_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of("target.xml", "<target><reg name=\"a\" bitsize=\"12\"/></target>")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("bitsize");
        assertThatThrownBy(() -> read(Map.of("target.xml", "<target><reg name=\"a\" bitsize=\"x\"/></target>")))
                .isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void read_duplicateRegnum_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of("target.xml", """
                <target><reg name="a" bitsize="8" regnum="1"/><reg name="b" bitsize="8" regnum="1"/></target>""")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("share regnum 1");
    }

    @Test
    void read_deeplyNestedElements_throwsProtocolException() {
        String xml = "<target>" + "<a>".repeat(10_000) + "</a>".repeat(10_000) + "</target>";

        assertThatThrownBy(() -> read(Map.of("target.xml", xml))).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void read_noRegisters_throwsProtocolException() {
        assertThatThrownBy(() -> read(Map.of("target.xml", "<target/>"))).isInstanceOf(QemuProtocolException.class);
    }
}
