using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using HostVM.Storage.Nbd;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// NBD over TLS against qemu-nbd with x509 credentials made by openssl: trusted by a CA file or by the certificate's
/// fingerprint it works; an unknown CA, a wrong fingerprint or no TLS at all is refused with a clear message.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NbdClientTlsTests : IDisposable
{
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void QemuNbdWithX509CredentialsIsReachedOnlyWithTrust()
    {
        string certs = Directory.CreateDirectory(Path.Combine(_dir.Directory, "certs")).FullName;
        MakeCertificates(certs);
        string image = _dir.Create(1 << 20, "disk.raw");
        int port = NbdPeer.FreePort();
        string tcp = $"nbds://127.0.0.1:{port}/disk";
        using var peer = NbdPeer.Start(
            "qemu-nbd",
            tcp,
            "--object", $"tls-creds-x509,id=tls0,dir={certs},endpoint=server,verify-peer=off",
            "--tls-creds", "tls0", "-f", "raw", "-x", "disk", "-b", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--persistent", "--shared=8", image);

        string ca = Path.Combine(certs, "ca-cert.pem");
        using (var client = NbdClient.Connect(NbdUri.Parse($"{tcp}?x-tls-ca={ca}")))
        {
            Assert.True(client.Tls);
            client.Write(4096, Enumerable.Repeat((byte)0x42, 4096).ToArray());
            var back = new byte[4096];
            client.Read(4096, back);
            Assert.All(back, b => Assert.Equal(0x42, b));
        }

        string fingerprint;
        using (var certificate = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(certs, "server-cert.pem")))
        {
            fingerprint = Convert.ToHexString(SHA256.HashData(certificate.RawData));
        }

        using (var disk = DiskImage.Open($"{tcp}?x-tls-fingerprint={fingerprint}", readOnly: true))
        {
            var back = new byte[4096];
            disk.Read(4096, back);
            Assert.All(back, b => Assert.Equal(0x42, b));
        }

        // The system's CAs do not know this one; nor does a wrong fingerprint match; plain NBD is refused by the server.
        Assert.Contains("TLS", Assert.Throws<BlockDeviceException>(() => DiskImage.Open(tcp, readOnly: true)).Message, StringComparison.Ordinal);
        Assert.Contains("TLS", Assert.Throws<BlockDeviceException>(() => DiskImage.Open($"{tcp}?x-tls-fingerprint={new string('0', 64)}", readOnly: true)).Message, StringComparison.Ordinal);
        Assert.Contains("requires TLS", Assert.Throws<BlockDeviceException>(() => DiskImage.Open($"nbd://127.0.0.1:{port}/disk", readOnly: true)).Message, StringComparison.Ordinal);
    }

    private void MakeCertificates(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
        OpenSsl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=HostVM test CA");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost");
        OpenSsl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "server-cert.pem", "-days", "2", "-extfile", "server.ext");
    }

    private static void OpenSsl(string dir, params string[] args) => QemuTools.Check("openssl", dir, args);
}
