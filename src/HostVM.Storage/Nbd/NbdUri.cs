using System.Globalization;
using System.Text;

namespace HostVM.Storage.Nbd;

/// <summary>
/// Where an NBD export is, as the NBD URI format (NetworkBlockDevice/nbd doc/uri.md) writes it:
/// <c>nbd://HOST[:PORT]/EXPORT</c> (TCP, port 10809 by default) or <c>nbd+unix:///EXPORT?socket=PATH</c>, and
/// <c>nbds://</c>, <c>nbds+unix://</c> for the same with TLS required. The export name is the path without its
/// first '/', percent-decoded. Query parameters: <c>socket</c> (Unix schemes only), <c>tls-hostname</c>,
/// <c>tls-verify-peer=0|1</c>, and HostVM's own <c>x-tls-ca=PEMFILE</c> (the CA to trust instead of the system's)
/// and <c>x-tls-fingerprint=SHA256HEX</c> (trust exactly the server certificate with that SHA-256).
/// </summary>
public sealed record NbdUri
{
    private static readonly string[] Schemes = ["nbd", "nbds", "nbd+unix", "nbds+unix"];

    /// <summary>The host name or address for TCP; null for a Unix socket.</summary>
    public string? Host { get; init; }

    public int Port { get; init; } = NbdProtocol.DefaultPort;

    /// <summary>The Unix socket's path; null for TCP.</summary>
    public string? SocketPath { get; init; }

    public string ExportName { get; init; } = string.Empty;

    /// <summary>The scheme demands TLS (nbds, nbds+unix): without it the connection fails.</summary>
    public bool RequireTls { get; init; }

    /// <summary>The name the server's certificate must carry; by default the host (none for a Unix socket).</summary>
    public string? TlsHostname { get; init; }

    /// <summary>Whether the server's certificate is checked at all (tls-verify-peer=0 turns that off).</summary>
    public bool TlsVerifyPeer { get; init; } = true;

    /// <summary>A PEM file of CA certificates to trust instead of the system's.</summary>
    public string? TlsCaFile { get; init; }

    /// <summary>The SHA-256 of the one server certificate to trust (hex, colons allowed), instead of any CA.</summary>
    public string? TlsFingerprint { get; init; }

    /// <summary>Whether <paramref name="text"/> is meant as an NBD URI (its scheme is one of NBD's), valid or not.</summary>
    public static bool IsNbdUri(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.IndexOf("://", StringComparison.Ordinal);
        return colon > 0 && Schemes.Contains(text[..colon].ToLowerInvariant());
    }

    /// <summary>Parses <paramref name="text"/>.</summary>
    /// <exception cref="FormatException">The text is not an NBD URI HostVM can use; the message says which part is wrong.</exception>
    public static NbdUri Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int sep = text.IndexOf("://", StringComparison.Ordinal);
        string scheme = sep > 0 ? text[..sep].ToLowerInvariant() : string.Empty;
        if (!Schemes.Contains(scheme))
        {
            throw Bad(text, "the scheme must be nbd://, nbds://, nbd+unix:// or nbds+unix:// (e.g. nbd://host:10809/export or nbd+unix:///export?socket=/run/nbd.sock)");
        }

        string rest = text[(sep + 3)..];
        if (rest.Contains('#', StringComparison.Ordinal))
        {
            throw Bad(text, "an NBD URI has no fragment ('#...')");
        }

        string query = string.Empty;
        int q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        string authority = slash < 0 ? rest : rest[..slash];
        string path = slash < 0 ? string.Empty : rest[slash..];
        string export = Unescape(text, path.Length == 0 ? path : path[1..]);
        if (export.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(export) > NbdProtocol.MaxString)
        {
            throw Bad(text, $"the export name must have no NUL and at most {NbdProtocol.MaxString} bytes");
        }

        bool unix = scheme.EndsWith("+unix", StringComparison.Ordinal);
        var uri = new NbdUri { ExportName = export, RequireTls = scheme.StartsWith("nbds", StringComparison.Ordinal) };
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            string key = Unescape(text, eq < 0 ? pair : pair[..eq]);
            string value = Unescape(text, eq < 0 ? string.Empty : pair[(eq + 1)..]);
            uri = key switch
            {
                "socket" when unix => uri with { SocketPath = value },
                "socket" => throw Bad(text, "socket= is for nbd+unix:// URIs; a TCP URI names host and port instead"),
                "tls-hostname" => uri with { TlsHostname = value },
                "tls-verify-peer" when value is "0" or "1" => uri with { TlsVerifyPeer = value == "1" },
                "tls-verify-peer" => throw Bad(text, "tls-verify-peer must be 0 or 1"),
                "x-tls-ca" => uri with { TlsCaFile = value },
                "x-tls-fingerprint" => uri with { TlsFingerprint = value },
                _ => throw Bad(text, $"unknown query parameter '{key}' (HostVM understands socket, tls-hostname, tls-verify-peer, x-tls-ca, x-tls-fingerprint)"),
            };
        }

        if (unix)
        {
            if (authority.Length != 0)
            {
                throw Bad(text, "a Unix-socket URI has no host: write nbd+unix:///EXPORT?socket=PATH (three slashes)");
            }

            if (string.IsNullOrEmpty(uri.SocketPath))
            {
                throw Bad(text, "a Unix-socket URI needs ?socket=PATH");
            }

            return uri;
        }

        if (authority.Contains('@', StringComparison.Ordinal))
        {
            throw Bad(text, "user names (user@host) are for TLS authentication HostVM does not do; leave them out");
        }

        var (host, port) = SplitHostPort(text, authority);
        return uri with { Host = host, Port = port };
    }

    /// <summary>The URI in its usual written form (for messages and logs).</summary>
    public override string ToString()
    {
        string scheme = (RequireTls ? "nbds" : "nbd") + (SocketPath is null ? string.Empty : "+unix");
        string export = Uri.EscapeDataString(ExportName);
        if (SocketPath is not null)
        {
            return $"{scheme}:///{export}?socket={SocketPath}";
        }

        string host = Host!.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host;
        return $"{scheme}://{host}:{Port.ToString(CultureInfo.InvariantCulture)}/{export}";
    }

    private static (string Host, int Port) SplitHostPort(string text, string authority)
    {
        string host = authority;
        string? portText = null;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Bad(text, "an IPv6 address in brackets lacks its ']'");
            }

            host = authority[1..close];
            string after = authority[(close + 1)..];
            if (after.Length > 0)
            {
                portText = after.StartsWith(':') ? after[1..] : throw Bad(text, "after ']' only ':PORT' may follow");
            }
        }
        else if (authority.LastIndexOf(':') is int colon and >= 0)
        {
            host = authority[..colon];
            portText = authority[(colon + 1)..];
        }

        if (host.Length == 0)
        {
            throw Bad(text, "the host is missing: write nbd://HOST[:PORT]/EXPORT, or nbd+unix:///EXPORT?socket=PATH for a Unix socket");
        }

        int port = NbdProtocol.DefaultPort;
        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            throw Bad(text, $"the port '{portText}' is not a number from 1 to 65535");
        }

        return (host, port);
    }

    private static string Unescape(string text, string part)
    {
        try
        {
            return Uri.UnescapeDataString(part);
        }
        catch (UriFormatException e)
        {
            throw new FormatException($"NBD URI '{text}': bad percent-encoding in '{part}'.", e);
        }
    }

    private static FormatException Bad(string text, string why) => new($"NBD URI '{text}': {why}.");
}
