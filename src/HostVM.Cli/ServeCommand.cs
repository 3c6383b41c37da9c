using System.CommandLine;
using HostVM.Host;

namespace HostVM.Cli;

/// <summary>`hostvm serve`: the host daemon (REST API, inventory, supervisor of one VMM process per VM).</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = $"Settings file (JSON; default {HostSettings.DefaultConfigFile()})." };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Inventory, images, disks and logs (default {HostSettings.DefaultDataDir()})." };
        var runtimeDir = new Option<string?>("--runtime-dir") { Description = $"Sockets and switches (default {HostSettings.DefaultRuntimeDir()})." };
        var listen = new Option<string[]>("--listen") { Description = $"TCP address to serve the API on, HOST:PORT (default 127.0.0.1:{HostSettings.DefaultPort}; port 0 picks one). Repeatable." };
        var socket = new Option<string?>("--socket") { Description = "The local Unix socket (default RUNTIME_DIR/hostvm.sock; empty for none)." };
        var memoryOvercommit = new Option<string?>("--memory-overcommit") { Description = "Memory VMs may hold, as a multiple of host RAM minus the reserve (default 1.0)." };
        var cpuOvercommit = new Option<string?>("--cpu-overcommit") { Description = "vCPUs per host core VMs may hold (default 4)." };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate to serve HTTPS with, with --tls-key (default: a self-signed one made on the first start in DATA_DIR/tls/)." };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert." };
        var statsInterval = new Option<string?>("--stats-interval") { Description = "Seconds between the stats sampler's readings of each VM (default 10; one hour of samples is kept)." };
        var command = new Command("serve", "Run the host daemon: the REST API (docs/host-api.md) over many VMs, one VMM process each.")
        {
            config, dataDir, runtimeDir, listen, socket, memoryOvercommit, cpuOvercommit, tlsCert, tlsKey, statsInterval,
        };
        command.SetAction(async (parse, token) =>
        {
            var flags = new Dictionary<string, string?>
            {
                ["data_dir"] = parse.GetValue(dataDir),
                ["runtime_dir"] = parse.GetValue(runtimeDir),
                ["listen"] = parse.GetValue(listen) is { Length: > 0 } l ? string.Join(',', l) : null,
                ["unix_socket"] = parse.GetValue(socket),
                ["memory_overcommit"] = parse.GetValue(memoryOvercommit),
                ["cpu_overcommit"] = parse.GetValue(cpuOvercommit),
                ["stats_interval_s"] = parse.GetValue(statsInterval),
                ["tls_cert"] = parse.GetValue(tlsCert),
                ["tls_key"] = parse.GetValue(tlsKey),
            };
            HostSettings settings;
            HostDaemon daemon;
            try
            {
                settings = HostSettings.Load(parse.GetValue(config), flags);
                daemon = await HostDaemon.StartAsync(settings);
            }
            catch (HostSettingsException e)
            {
                Console.Error.WriteLine($"hostvm serve: {e.Message}");
                return 2;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"hostvm serve: {e.Message}");
                return 2;
            }

            await using (daemon)
            {
                if (daemon.Tls is { } tls)
                {
                    // Clients pin this (hostvm login, --fingerprint); print it where the operator sees it on every start.
                    Console.WriteLine($"hostvm serve: TLS certificate SHA-256 fingerprint: {tls.Fingerprint}");
                    Console.WriteLine($"hostvm serve: TLS certificate in {tls.CertificatePath}{(tls.Generated ? " (made now, self-signed)" : string.Empty)}");
                }

                foreach (var address in daemon.Addresses)
                {
                    Console.WriteLine($"hostvm serve: listening on {address}");
                }

                Console.WriteLine($"hostvm serve: data in {settings.DataDir}, sockets in {settings.RuntimeDir}");
                if (daemon.InitialToken is { } initial)
                {
                    Console.WriteLine($"hostvm serve: first start: admin token (shown once, keep it safe): {initial}");
                }

                await daemon.WaitForShutdownAsync(token);
            }

            return 0;
        });
        return command;
    }
}
