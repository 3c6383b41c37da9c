using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace HostVM.Integration.Tests;

/// <summary>
/// A real `hostvm serve` process on loopback with its own data and runtime directories, and an HTTPS
/// client for it that pins the certificate fingerprint the daemon printed. Dispose kills it and every VMM it
/// started (they run in their own sessions).
/// </summary>
public sealed partial class DaemonUnderTest : IDisposable
{
    private HostvmProcess _process;
    private readonly string[] _extraArgs;

    private readonly NetworkNamespace? _namespace;

    private DaemonUnderTest(string root, string[] extraArgs, NetworkNamespace? inNamespace = null)
    {
        Root = root;
        _extraArgs = extraArgs;
        _namespace = inNamespace;
        DataDir = Path.Combine(root, "data");
        RuntimeDir = Path.Combine(root, "run");
        Directory.CreateDirectory(Path.Combine(DataDir, "import"));
        _process = Launch();
    }

    public string Root { get; }

    public string DataDir { get; }

    public string RuntimeDir { get; }

    public HttpClient Client { get; private set; } = new();

    /// <summary>The SHA-256 fingerprint `hostvm serve` printed for its certificate (AB:CD:…).</summary>
    public string Fingerprint { get; private set; } = string.Empty;

    /// <summary>The certificate the daemon made in its data directory (PEM; curl --cacert takes it).</summary>
    public string CertificatePath => Path.Combine(DataDir, "tls", "server.crt");

    public HostvmProcess Process => _process;

    /// <summary>The mutating calls made through <see cref="Client"/> and <see cref="ClientWith"/>: all must be in the audit log.</summary>
    public AuditedCalls Audited { get; } = new();

    /// <summary>The admin token the daemon printed at its first start (Client sends it).</summary>
    public string? Token { get; private set; }

    /// <summary>A client of the same daemon that sends <paramref name="token"/> (null: none).</summary>
    public HttpClient ClientWith(string? token)
    {
        var handler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = ValidateCertificate } };
        if (_namespace is { } ns)
        {
            // The daemon listens on the namespace's loopback: connect from inside it.
            handler.ConnectCallback = (context, _) => new ValueTask<Stream>(ns.ConnectAsync(context.DnsEndPoint));
        }

        var client = new HttpClient(Audited.Wrap(handler))
        {
            BaseAddress = new Uri(ListenLine().Matches(_process.Output)[^1].Groups[1].Value),
        };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    /// <summary>A daemon inside <paramref name="inNamespace"/>: its NATs and VMMs reach only what that namespace holds.</summary>
    public static async Task<DaemonUnderTest> StartInAsync(NetworkNamespace inNamespace, params string[] extraArgs)
    {
        var daemon = new DaemonUnderTest(Directory.CreateTempSubdirectory("hostvm-daemon-").FullName, extraArgs, inNamespace);
        await daemon.WaitForAddressAsync();
        return daemon;
    }

    public static async Task<DaemonUnderTest> StartAsync(params string[] extraArgs)
    {
        var daemon = new DaemonUnderTest(Directory.CreateTempSubdirectory("hostvm-daemon-").FullName, extraArgs);
        await daemon.WaitForAddressAsync();
        return daemon;
    }

    private HostvmProcess Launch() => HostvmProcess.StartThrough(_namespace?.Exec ?? [],
        ["serve", "--data-dir", DataDir, "--runtime-dir", RuntimeDir, "--listen", "127.0.0.1:0", .. _extraArgs]);

    private async Task WaitForAddressAsync()
    {
        await _process.WaitForOutputAsync("listening on https://127.0.0.1:", TimeSpan.FromSeconds(60));
        await _process.WaitForOutputAsync("data in ", TimeSpan.FromSeconds(10));
        // The last start's lines: after a restart the output holds both.
        Fingerprint = FingerprintLine().Matches(_process.Output)[^1].Groups[1].Value;
        // The first start prints the admin token, after the lines above: wait for it (reading the output
        // at once raced with it on a loaded machine, and left an empty token). A restarted daemon keeps
        // the tokens it had and prints none.
        if (Token is null)
        {
            await _process.WaitForOutputAsync("admin token (shown once, keep it safe): hvt_", TimeSpan.FromSeconds(30));
            Token = AdminTokenLine().Match(_process.Output).Groups[1].Value;
        }
        Client.Dispose();
        Client = ClientWith(Token);
    }

    /// <summary>Trusts exactly the certificate whose fingerprint the daemon printed (for HttpClient and ClientWebSocket).</summary>
    public bool ValidateCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(certificate.GetRawCertData())) == Fingerprint.Replace(":", string.Empty, StringComparison.Ordinal);

    /// <summary>A WebSocket client that pins the daemon's certificate.</summary>
    public System.Net.WebSockets.ClientWebSocket NewWebSocket(string? token = null)
    {
        var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.RemoteCertificateValidationCallback = ValidateCertificate;
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token ?? Token}");
        return socket;
    }

    /// <summary>wss://127.0.0.1:PORT/<paramref name="path"/> (a path like "v1/vms/x/console").</summary>
    public Uri WebSocketUri(string path) => new(Client.BaseAddress!.ToString().Replace("https://", "wss://", StringComparison.Ordinal) + path);

    /// <summary>
    /// Kills the daemon with SIGKILL (its VMMs live on) and starts a new one on the same directories;
    /// <paramref name="whileDown"/> runs in between (to change its files as a crash or an older version would).
    /// </summary>
    public async Task KillAndRestartAsync(Action? whileDown = null)
    {
        ProcessKill(_process.Id, 9);
        await _process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        _process.Dispose();
        whileDown?.Invoke();
        _process = Launch();
        await WaitForAddressAsync();
    }

    /// <summary>Imports the test guest (shell mode) as image <paramref name="name"/> through the import directory.</summary>
    public async Task ImportGuestAsync(string name = "guest", string bootArgs = "console=ttyS0 quiet hostvm.mode=shell")
    {
        string import = Path.Combine(DataDir, "import");
        foreach (var f in new[] { "Image", "initramfs.cpio.gz", "disk.ext4" })
        {
            if (!File.Exists(Path.Combine(import, f)))
            {
                File.Copy(GuestArtifacts.Guest(f), Path.Combine(import, f));
            }
        }

        var response = await PostAsync("/v1/images", new { name, kernel = "Image", initrd = "initramfs.cpio.gz", disk = "disk.ext4", boot_args = bootArgs });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    public Task<HttpResponseMessage> PostAsync(string path, object? body = null) =>
        Client.PostAsync(path, body is null ? null : JsonContent.Create(body));

    public async Task<JsonElement> GetAsync(string path)
    {
        var response = await Client.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    /// <summary>Sends a request and returns its status and JSON body.</summary>
    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, object? body = null, string? raw = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (raw is not null)
        {
            request.Content = new StringContent(raw, Encoding.UTF8, "application/json");
        }
        else if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        var response = await Client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text.Length == 0 ? "null" : text);
        return ((int)response.StatusCode, doc.RootElement.Clone());
    }

    public async Task<JsonElement> CreateVmAsync(object request)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "/v1/vms", request);
        Assert.True(status == 201, $"create: {status} {body}");
        return body;
    }

    public string SerialLog(JsonElement vm) => Path.Combine(DataDir, "vms", vm.GetProperty("id").GetString()!, "out", "serial.log");


    public string ConsoleSocket(JsonElement vm) => Path.Combine(RuntimeDir, "vms", vm.GetProperty("id").GetString()!, "console.sock");

    /// <summary>What the VM's serial log holds: the older generation (serial.log.1, after a rotation), then serial.log.</summary>
    public string SerialText(JsonElement vm)
    {
        string log = SerialLog(vm);
        return (File.Exists(log + ".1") ? File.ReadAllText(log + ".1") : string.Empty) + (File.Exists(log) ? File.ReadAllText(log) : string.Empty);
    }

    /// <summary>Waits until the VM's serial log shows <paramref name="marker"/>.</summary>
    public async Task WaitForSerialAsync(JsonElement vm, string marker, double seconds = 120)
    {
        var watch = Stopwatch.StartNew();
        while (!SerialText(vm).Contains(marker, StringComparison.Ordinal))
        {
            if (watch.Elapsed.TotalSeconds > seconds)
            {
                throw new TimeoutException($"no {marker} in {SerialLog(vm)} after {seconds} s:\n{SerialText(vm)}");
            }

            await Task.Delay(100);
        }
    }

    public async Task<ulong> InstructionsAsync(string vm) =>
        (await GetAsync($"/v1/vms/{vm}/stats")).GetProperty("instructions_retired").GetUInt64();

    public static void ProcessKill(int pid, int signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>The processes whose environment holds <paramref name="entry"/> (NAME=VALUE), as far as this user may read them.</summary>
    public static List<int> ProcessesWithEnvironment(string entry)
    {
        var found = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), System.Globalization.CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains(entry))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone, or not ours to read.
            }
        }

        return found;
    }

    public static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');

    [GeneratedRegex(@"admin token \(shown once, keep it safe\): (hvt_\S+)")]
    private static partial Regex AdminTokenLine();

    [GeneratedRegex(@"listening on (https://127\.0\.0\.1:\d+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"TLS certificate SHA-256 fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")]
    private static partial Regex FingerprintLine();

    /// <summary>Every mutating call this test made through the daemon's clients is in its audit log, with its status.</summary>
    public async Task AssertEveryCallIsAuditedAsync()
    {
        using var audit = JsonDocument.Parse(await Client.GetStringAsync("/v1/audit?limit=10000"));
        var missing = Unaudited(Audited.Calls, audit.RootElement,
            e => (e.GetProperty("method").GetString()!, e.GetProperty("path").GetString()!, e.GetProperty("status").GetInt32()), c => c.Item3);
        Assert.True(missing.Count == 0, $"mutating calls missing from the audit log:\n{string.Join('\n', missing)}");
    }

    /// <summary>
    /// The <paramref name="calls"/> (each a key an audit entry also yields through <paramref name="keyOf"/>) that
    /// <paramref name="audit"/> does not hold. A refusal without a valid token (401, 429) may be in a counted
    /// entry instead of its own (method "*": past a few a minute from one address the daemon counts them):
    /// those entries' counts cover the refusals of their status that have no entry of their own.
    /// </summary>
    public static List<string> Unaudited<TKey>(IEnumerable<TKey> calls, JsonElement audit, Func<JsonElement, TKey> keyOf, Func<TKey, int> statusOf)
        where TKey : notnull
    {
        var entries = audit.EnumerateArray().ToList();
        bool IsCount(JsonElement e) => e.GetProperty("method").GetString() == "*";
        var logged = entries.Where(e => !IsCount(e)).GroupBy(keyOf).ToDictionary(g => g.Key, g => g.Count());
        var counted = entries.Where(IsCount).GroupBy(e => e.GetProperty("status").GetInt32()).ToDictionary(g => g.Key, g => g.Sum(e => e.GetProperty("count").GetInt32()));
        var missing = new List<string>();
        foreach (var group in calls.GroupBy(c => c))
        {
            int shortfall = group.Count() - logged.GetValueOrDefault(group.Key);
            int status = statusOf(group.Key);
            if (shortfall > 0 && status is 401 or 429)
            {
                int covered = Math.Min(shortfall, counted.GetValueOrDefault(status));
                counted[status] = counted.GetValueOrDefault(status) - covered;
                shortfall -= covered;
            }

            if (shortfall > 0)
            {
                missing.Add($"{group.Key} (x{shortfall})");
            }
        }

        return missing;
    }

    public void Dispose()
    {
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? unaudited = null;
        if (!_process.HasExited && Audited.Calls.Count > 0)
        {
            // The issue's rule, checked for every test that drove a daemon: no mutating call escapes the audit log.
            try
            {
                AssertEveryCallIsAuditedAsync().GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                unaudited = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
        }

        Client.Dispose();
        _process.Dispose();
        // The VMMs run in their own sessions: find them by the runtime directory on their command line (an unjailed one's)
        // or in their environment (a jailed one sees other paths, but is told the switches' runtime directory).
        using (var pkill = System.Diagnostics.Process.Start("pkill", ["-9", "-f", RuntimeDir]))
        {
            pkill.WaitForExit();
        }

        foreach (int pid in ProcessesWithEnvironment($"HOSTVM_RUNTIME_DIR={RuntimeDir}"))
        {
            ProcessKill(pid, 9);
        }

        Thread.Sleep(200);
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }

        unaudited?.Throw();
    }
}
