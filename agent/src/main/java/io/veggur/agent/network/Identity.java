package io.veggur.agent.network;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;

/** A private key and its certificate chain: the certificate first, the issuing CA last. */
public record Identity(PrivateKey key, List<X509Certificate> chain) {
    /** Alias of the key entry in {@link #keyStore}. */
    public static final String KEY_ALIAS = "identity";
    /** Alias of the CA's trusted-certificate entry in {@link #keyStore}. */
    public static final String CA_ALIAS = "ca";

    public Identity {
        if (chain.size() < 2) {
            throw new IllegalArgumentException("a chain holds the certificate and its CA");
        }
        chain = List.copyOf(chain);
    }

    public X509Certificate certificate() {
        return chain.getFirst();
    }

    public X509Certificate ca() {
        return chain.getLast();
    }

    public BigInteger serial() {
        return certificate().getSerialNumber();
    }

    /**
     * A PKCS#12 store (the JDK's default algorithms) holding the key with its chain as {@value #KEY_ALIAS} and the CA
     * as a trusted certificate {@value #CA_ALIAS}: all a JDK-only client needs for mutual TLS.
     */
    public KeyStore keyStore(char[] password) throws GeneralSecurityException {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try {
            store.load(null, null);
        } catch (IOException e) {
            throw new GeneralSecurityException("cannot create an empty PKCS#12 store", e);
        }
        store.setKeyEntry(KEY_ALIAS, key, password, chain.toArray(X509Certificate[]::new));
        store.setCertificateEntry(CA_ALIAS, ca());
        return store;
    }

    /** {@link #keyStore} as the bytes of a PKCS#12 file. */
    public byte[] pkcs12(char[] password) throws GeneralSecurityException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            keyStore(password).store(bytes, password);
        } catch (IOException e) {
            throw new GeneralSecurityException("cannot encode the PKCS#12 store", e);
        }
        return bytes.toByteArray();
    }

    /** Writes {@link #pkcs12} to a file, mode 0600, atomically replacing what was there. */
    public void writePkcs12(Path file, char[] password) throws IOException, GeneralSecurityException {
        CertificateAuthority.writeFile(file, pkcs12(password), CertificateAuthority.PRIVATE);
    }
}
