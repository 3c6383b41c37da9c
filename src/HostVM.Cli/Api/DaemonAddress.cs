namespace HostVM.Cli.Api;

/// <summary>
/// Where the daemon listens: an HTTP base address, or a Unix socket (written <c>unix:PATH</c>), and
/// where that choice came from (--host, HOSTVM_HOST, the config file, the default), so an error can say.
/// </summary>
public sealed record DaemonAddress
{
    public const string UnixPrefix = "unix:";

    private DaemonAddress(string text, Uri baseUri, string? socketPath, string source)
    {
        Text = text;
        BaseUri = baseUri;
        SocketPath = socketPath;
        Source = source;
    }

    /// <summary>As the user wrote it (or the default): <c>https://127.0.0.1:8006</c>, <c>unix:/run/hostvm/hostvm.sock</c>.</summary>
    public string Text { get; }

    /// <summary>The base of every request URI; for a Unix socket, <c>http://localhost/</c>.</summary>
    public Uri BaseUri { get; }

    /// <summary>The Unix socket to connect to, or null for TCP.</summary>
    public string? SocketPath { get; }

    /// <summary>Where the address came from: "--host", "HOSTVM_HOST", a config file's path, "default".</summary>
    public string Source { get; }

    /// <summary>Reads <c>unix:PATH</c>, <c>http(s)://HOST[:PORT]</c> or <c>HOST:PORT</c> (taken as https: the daemon serves TCP over TLS).</summary>
    /// <exception cref="FormatException">The text is none of those; the message says what to write.</exception>
    public static DaemonAddress Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        string trimmed = text.Trim();
        if (trimmed.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            string path = trimmed[UnixPrefix.Length..];
            if (path.Length == 0)
            {
                throw new FormatException($"{source} {text}: write unix:PATH, e.g. unix:/run/hostvm/hostvm.sock.");
            }

            return new DaemonAddress(trimmed, new Uri("http://localhost/"), Path.GetFullPath(path), source);
        }

        string withScheme = trimmed.Contains("://", StringComparison.Ordinal) ? trimmed : "https://" + trimmed;
        if (!Uri.TryCreate(withScheme, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
        {
            throw new FormatException($"{source} {text}: not a daemon address; write https://HOST:PORT (e.g. https://127.0.0.1:8006) or unix:PATH.");
        }

        var builder = new UriBuilder(uri);
        if (!builder.Path.EndsWith('/'))
        {
            builder.Path += "/"; // so relative request paths (v1/vms) are appended, not substituted
        }

        return new DaemonAddress(trimmed, builder.Uri, null, source);
    }

    public override string ToString() => Text;
}
