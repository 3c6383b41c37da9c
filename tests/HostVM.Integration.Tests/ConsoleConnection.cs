using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace HostVM.Integration.Tests;

/// <summary>A shell-mode guest's serial console over a VMM's console socket: type commands, read what they print.</summary>
public sealed class ConsoleConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private readonly Thread _reader;
    private int _commands;

    private ConsoleConnection(Socket socket)
    {
        _socket = socket;
        _reader = new Thread(Read) { IsBackground = true, Name = "console reader" };
        _reader.Start();
    }

    public static ConsoleConnection Open(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        return new ConsoleConnection(socket);
    }

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    private void Read()
    {
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = _socket.Receive(buffer)) > 0)
            {
                lock (_lock)
                {
                    _output.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Runs a command; returns its exit status and output.</summary>
    public async Task<(int Status, string Output)> RunAsync(string command, double seconds = 60)
    {
        int id = Interlocked.Increment(ref _commands) + Random.Shared.Next(1000, 9999) * 100;

        // The shell prints its prompt ("# ") after the last command's marker: wait for it (a little), so that it is not
        // taken for this command's output.
        for (int i = 0; i < 60 && !Output.EndsWith("# ", StringComparison.Ordinal); i++)
        {
            await Task.Delay(50);
        }

        int from = Output.Length;
        _socket.Send(Encoding.ASCII.GetBytes($"{command}; echo \"HOSTVM-DONE-$?-{id}\"\n"));
        var pattern = new Regex($"HOSTVM-DONE-(\\d+)-{id}\\b");
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            string text = Output;
            var m = pattern.Match(text, from);
            if (m.Success)
            {
                return (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), text[from..m.Index]);
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"'{command}' did not finish in {seconds} s:\n{text}");
            }

            await Task.Delay(50);
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _reader.Join(2000);
    }
}
