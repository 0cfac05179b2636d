package io.veggur.host.qemu;

import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.xml.sax.ErrorHandler;
import org.xml.sax.InputSource;
import org.xml.sax.SAXException;
import org.xml.sax.SAXParseException;

/**
 * Builds a {@link RegisterLayout} from a GDB target description: {@code target.xml} plus the files it pulls in with
 * {@code <xi:include href="..."/>}, expanded in place. Registers are the {@code <reg>} elements in document order; a
 * register without {@code regnum} gets the previous register's number plus one, the first one 0.
 *
 * <p>The XML comes from QEMU, so it is parsed defensively: no DTD is loaded and no external entity resolved (QEMU's
 * files name {@code gdb-target.dtd}, which is not needed to read them); entity expansion and element depth are
 * capped (the depth cap also bounds the recursion here); at most {@value #MAX_FILES} files are read; an include cycle
 * is an error; and include names must be plain file names because they go verbatim into a {@code qXfer} request.
 * Parsing is namespace-unaware on purpose: QEMU's {@code target.xml} uses the {@code xi:} prefix without declaring
 * it.
 */
final class TargetDescriptionReader {
    static final int MAX_FILES = 32;
    private static final int MAX_REGISTERS = 4096;
    private static final int MAX_BITS = 4096;
    private static final Pattern ANNEX = Pattern.compile("[A-Za-z0-9._-]{1,100}");

    /** Fetches one file of the description by its annex name. */
    @FunctionalInterface
    interface Source {
        String read(String annex) throws IOException;
    }

    private record Declared(String name, int bitSize, int regnum, String annex) {}

    private final Source source;
    private final DocumentBuilder parser;
    private final List<Declared> declared = new ArrayList<>();
    private final Set<String> open = new HashSet<>();
    private int files;
    private int nextRegnum;

    private TargetDescriptionReader(Source source) {
        this.source = source;
        this.parser = newParser();
    }

    static RegisterLayout read(Source source) throws IOException {
        TargetDescriptionReader reader = new TargetDescriptionReader(source);
        reader.include("target.xml");
        return reader.layout();
    }

    private void include(String annex) throws IOException {
        if (!ANNEX.matcher(annex).matches()) {
            throw new QemuProtocolException("target description includes an unusable file name "
                    + GdbPacketCodec.preview(annex));
        }
        if (!open.add(annex)) {
            throw new QemuProtocolException("target description include cycle at " + annex);
        }
        if (++files > MAX_FILES) {
            throw new QemuProtocolException("target description spans more than " + MAX_FILES + " files");
        }
        visit(parse(annex, source.read(annex)).getDocumentElement(), annex);
        open.remove(annex);
    }

    private void visit(Element element, String annex) throws IOException {
        switch (element.getTagName()) {
            case "reg" -> declare(element, annex);
            case "xi:include" -> include(element.getAttribute("href"));
            default -> {
                for (Node child = element.getFirstChild(); child != null; child = child.getNextSibling()) {
                    if (child instanceof Element childElement) {
                        visit(childElement, annex);
                    }
                }
            }
        }
    }

    private void declare(Element reg, String annex) throws QemuProtocolException {
        String name = reg.getAttribute("name");
        if (name.isEmpty()) {
            throw new QemuProtocolException("register without a name in " + annex);
        }
        int bitSize = number(reg, "bitsize", annex);
        if (bitSize == 0 || bitSize > MAX_BITS || bitSize % 8 != 0) {
            throw new QemuProtocolException("register " + name + " in " + annex + " has unusable bitsize " + bitSize);
        }
        int regnum = reg.hasAttribute("regnum") ? number(reg, "regnum", annex) : nextRegnum;
        if (declared.size() == MAX_REGISTERS) {
            throw new QemuProtocolException("target description declares more than " + MAX_REGISTERS + " registers");
        }
        declared.add(new Declared(name, bitSize, regnum, annex));
        nextRegnum = regnum + 1;
    }

    private RegisterLayout layout() throws QemuProtocolException {
        List<Declared> ordered = declared.stream().sorted(Comparator.comparingInt(Declared::regnum)).toList();
        List<RegisterLayout.Register> registers = new ArrayList<>(ordered.size());
        Set<String> names = new HashSet<>();
        int offset = 0;
        for (int i = 0; i < ordered.size(); i++) {
            Declared reg = ordered.get(i);
            if (i > 0 && ordered.get(i - 1).regnum() == reg.regnum()) {
                throw new QemuProtocolException("registers " + ordered.get(i - 1).name() + " and " + reg.name()
                        + " share regnum " + reg.regnum());
            }
            if (!names.add(reg.name())) {
                throw new QemuProtocolException("register " + reg.name() + " is declared twice (again in "
                        + reg.annex() + ")");
            }
            registers.add(new RegisterLayout.Register(reg.name(), reg.bitSize(), reg.regnum(), offset));
            offset += reg.bitSize() / 4;
        }
        if (registers.isEmpty()) {
            throw new QemuProtocolException("target description declares no registers");
        }
        return new RegisterLayout(registers);
    }

    private static int number(Element reg, String attribute, String annex) throws QemuProtocolException {
        String value = reg.getAttribute(attribute);
        try {
            int number = Integer.parseInt(value);
            if (number >= 0 && number <= 1 << 20) {
                return number;
            }
        } catch (NumberFormatException ignored) {
            // reported below with context
        }
        throw new QemuProtocolException("register " + reg.getAttribute("name") + " in " + annex + " has "
                + attribute + "=" + GdbPacketCodec.preview(value));
    }

    private Document parse(String annex, String xml) throws IOException {
        try {
            return parser.parse(new InputSource(new StringReader(xml)));
        } catch (SAXException e) {
            throw new QemuProtocolException("target description " + annex + " is not well-formed XML: "
                    + e.getMessage(), e);
        }
    }

    private static DocumentBuilder newParser() {
        try {
            DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
            factory.setNamespaceAware(false);
            factory.setValidating(false);
            factory.setXIncludeAware(false);
            factory.setExpandEntityReferences(false);
            factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
            factory.setFeature("http://xml.org/sax/features/external-general-entities", false);
            factory.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
            factory.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            factory.setAttribute(XMLConstants.ACCESS_EXTERNAL_SCHEMA, "");
            factory.setAttribute("jdk.xml.maxElementDepth", "64");
            factory.setAttribute("jdk.xml.entityExpansionLimit", "1000");
            DocumentBuilder builder = factory.newDocumentBuilder();
            builder.setEntityResolver((publicId, systemId) -> {
                throw new SAXException("target description refers to external entity " + systemId);
            });
            builder.setErrorHandler(new ErrorHandler() {
                @Override
                public void warning(SAXParseException e) {
                    // warnings do not stop a well-formed document
                }

                @Override
                public void error(SAXParseException e) throws SAXException {
                    throw e;
                }

                @Override
                public void fatalError(SAXParseException e) throws SAXException {
                    throw e;
                }
            });
            return builder;
        } catch (ParserConfigurationException e) {
            throw new IllegalStateException("the JDK XML parser rejects the secure configuration", e);
        }
    }
}
