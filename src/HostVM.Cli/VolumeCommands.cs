using System.CommandLine;
using HostVM.Cli.Api;
using HostVM.Host.Api;
using HostVM.Storage;
using HostVM.Storage.Qcow2;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm volume ...`: disks in pools, attached to VMs with `hostvm vm create --disk POOL/NAME`.</summary>
public static class VolumeCommands
{
    private const string KeyHelp = "POOL/NAME (a bare NAME is in the default pool).";

    public static Command Create(DaemonCommandRunner runner)
    {
        var command = new Command("volume", "Manage volumes: disks in pools (qcow2 or raw) that VMs attach with `hostvm vm create --disk POOL/NAME`.")
        {
            CreateCommand(runner),
            ListCommand(runner),
            ShowCommand(runner),
            ResizeCommand(runner),
            DeleteCommand(runner),
            ImportCommand(runner),
            ExportCommand(runner),
            ServeCommand(runner),
        };
        return command;
    }

    /// <summary>POOL/NAME as the daemon's two path segments; a bare NAME is in the default pool.</summary>
    public static (string Pool, string Name) Key(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        var key = slash < 0 ? ("default", text) : (text[..slash], text[(slash + 1)..]);
        return key.Item1.Length == 0 || key.Item2.Length == 0 || key.Item2.Contains('/', StringComparison.Ordinal)
            ? throw new UsageException($"volume '{text}': write {KeyHelp}")
            : key;
    }

    /// <summary>POOL/NAME, with the default pool's name where <paramref name="text"/> has none.</summary>
    public static string FullKey(string text)
    {
        var (pool, name) = Key(text);
        return $"{pool}/{name}";
    }

    private static long Size(string option, string text) =>
        SizeParser.TryParse(text, out ulong bytes) && bytes is > 0 and <= long.MaxValue
            ? (long)bytes
            : throw new UsageException($"{option} {text}: not a size; write e.g. 10G or 512M (a bare number is MiB).");

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var size = new Option<string?>("--size") { Description = "The size its guest sees, e.g. 10G (default with --backing: the backing volume's)." };
        var format = new Option<string?>("--format") { Description = "qcow2 (the default: space is allocated as the guest writes) or raw." };
        var backing = new Option<string?>("--backing") { Description = "POOL/BASE: make a qcow2 overlay on this volume (no copy; BASE stays as it is)." };
        var project = OptionValues.ProjectOption("volume");
        var command = new Command("create", "Create a volume.") { key, size, format, backing, project };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            var volume = await call.Client.CreateVolumeAsync(new CreateVolumeRequest
            {
                Pool = pool,
                Name = name,
                SizeBytes = call.Get(size) is { } s ? Size("--size", s) : null,
                Format = call.Get(format),
                Backing = call.Get(backing),
                Project = call.Get(project),
            }, call.CancellationToken).ConfigureAwait(false);
            return call.Print(volume, (screen, v) => screen.MarkupLine(
                $"Created volume [bold]{Markup.Escape(v.Pool)}/{Markup.Escape(v.Name)}[/]: {v.Format}, {HumanOutput.Bytes(v.SizeBytes)}{(v.Backing is null ? string.Empty : $", on {Markup.Escape(v.Backing)}")}."));
        });
        return command;
    }

    private static Command ListCommand(DaemonCommandRunner runner)
    {
        var pool = new Option<string?>("--pool") { Description = "Only this pool's volumes." };
        var command = new Command("list", "List the volumes.") { pool };
        command.Aliases.Add("ls");
        runner.SetAction(command, async call => call.PrintTable(
            await call.Client.ListVolumesAsync(call.Get(pool), call.CancellationToken).ConfigureAwait(false),
            "No volumes yet: create one with `hostvm volume create NAME --size 10G`.",
            ["VOLUME", "PROJECT", "FORMAT", "SIZE", "ALLOCATED", "BACKING", "VM", "CREATED"],
            v =>
            [
                Markup.Escape($"{v.Pool}/{v.Name}"),
                Markup.Escape(v.Project),
                Markup.Escape(v.Format),
                HumanOutput.Bytes(v.SizeBytes),
                HumanOutput.Bytes(v.AllocatedBytes),
                HumanOutput.Escape(v.Backing),
                HumanOutput.Escape(v.AttachedTo),
                HumanOutput.Time(v.CreatedAt),
            ]));
        return command;
    }

    private static Command ShowCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var command = new Command("show", "Show one volume.") { key };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            var volume = await call.Client.GetVolumeAsync(pool, name, call.CancellationToken).ConfigureAwait(false);
            return call.Print(volume, (screen, v) => screen.Write(HumanOutput.Fields(
            [
                ("Volume", Markup.Escape($"{v.Pool}/{v.Name}")),
                ("Project", Markup.Escape(v.Project)),
                ("Format", Markup.Escape(v.Format)),
                ("Size", HumanOutput.Bytes(v.SizeBytes)),
                ("Allocated", HumanOutput.Bytes(v.AllocatedBytes)),
                ("Backing", HumanOutput.Escape(v.Backing)),
                ("Overlays", HumanOutput.Escape(string.Join(", ", v.Overlays))),
                ("VM", HumanOutput.Escape(v.AttachedTo)),
                ("Created", HumanOutput.Time(v.CreatedAt)),
            ])));
        });
        return command;
    }

    private static Command ResizeCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var size = new Argument<string>("size") { Description = "The new size, e.g. 20G (volumes only grow)." };
        var command = new Command("resize", "Grow a volume (no running VM may have it).") { key, size };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            var volume = await call.Client.ResizeVolumeAsync(pool, name, Size("size", call.Get(size)), call.CancellationToken).ConfigureAwait(false);
            return call.Print(volume, (screen, v) => screen.MarkupLine($"Volume [bold]{Markup.Escape(v.Pool)}/{Markup.Escape(v.Name)}[/] is now {HumanOutput.Bytes(v.SizeBytes)}."));
        });
        return command;
    }

    private static Command DeleteCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var command = new Command("delete", "Delete a volume (no VM may have it, no overlay may use it).") { key };
        command.Aliases.Add("rm");
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            await call.Client.DeleteVolumeAsync(pool, name, call.CancellationToken).ConfigureAwait(false);
            return call.Say($"Deleted volume [bold]{Markup.Escape(pool)}/{Markup.Escape(name)}[/].");
        });
        return command;
    }

    private static Command ImportCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = "The new volume: " + KeyHelp };
        var file = new Argument<string>("file") { Description = "A disk image on this machine: raw or qcow2 (read by its header, or as --source-format says)." };
        var format = new Option<string?>("--format") { Description = "What the daemon stores: qcow2 (the default) or raw." };
        var sourceFormat = new Option<string?>("--source-format") { Description = "raw or qcow2: the file's format, when its header must not decide." };
        var project = OptionValues.ProjectOption("volume");
        var command = new Command("import", "Upload a disk image as a new volume, converting it (progress on stderr when it is a terminal).") { key, file, format, sourceFormat, project };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            string path = call.Get(file);
            if (!File.Exists(path))
            {
                throw new UsageException($"{path}: no such file.");
            }

            IBlockDevice disk;
            try
            {
                disk = DiskImage.Open(path, readOnly: true, call.Get(sourceFormat));
            }
            catch (BlockDeviceException e)
            {
                throw new UsageException(e.Message);
            }

            await using var content = new BlockDeviceStream(disk);
            var volume = await WithProgressAsync(call, $"import {Path.GetFileName(path)}", content.Length, report =>
                call.Client.ImportVolumeAsync(pool, name, call.Get(format), call.Get(project), new ProgressStream(content, report), content.Length, call.CancellationToken)).ConfigureAwait(false);
            return call.Print(volume, (screen, v) => screen.MarkupLine(
                $"Imported volume [bold]{Markup.Escape(v.Pool)}/{Markup.Escape(v.Name)}[/]: {v.Format}, {HumanOutput.Bytes(v.SizeBytes)}, {HumanOutput.Bytes(v.AllocatedBytes)} allocated."));
        });
        return command;
    }

    private static Command ExportCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var file = new Argument<string>("file") { Description = "The file to write (must not exist)." };
        var format = new Option<string?>("--format") { Description = "raw (the default; sparse) or qcow2." };
        var command = new Command("export", "Download a volume's content (bases included) into a file, converting it.") { key, file, format };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            string path = Path.GetFullPath(call.Get(file));
            string fileFormat = call.Get(format) ?? "raw";
            if (fileFormat is not ("raw" or "qcow2"))
            {
                throw new UsageException($"--format {fileFormat}: must be raw or qcow2.");
            }

            if (File.Exists(path) || Directory.Exists(path))
            {
                throw new UsageException($"{path}: exists; give a new file's name.");
            }

            // Written under a temporary name and renamed when complete: an interrupted export leaves no file that looks whole.
            string partial = path + ".partial";
            try
            {
                await call.Client.ExportVolumeAsync(pool, name, async (stream, length) =>
                {
                    if (fileFormat == "qcow2")
                    {
                        Qcow2Image.Create(partial, length);
                    }
                    else
                    {
                        using var raw = new FileStream(partial, FileMode.CreateNew, FileAccess.Write);
                        raw.SetLength(length);
                    }

                    using var target = DiskImage.Open(partial, readOnly: false, fileFormat);
                    await WithProgressAsync(call, $"export {Path.GetFileName(path)}", length, async report =>
                    {
                        await BlockCopy.CopyAsync(stream, length, target, report, call.CancellationToken).ConfigureAwait(false);
                        return 0;
                    }).ConfigureAwait(false);
                }, call.CancellationToken).ConfigureAwait(false);
                File.Move(partial, path);
            }
            finally
            {
                File.Delete(partial);
            }

            return call.Say($"Exported volume [bold]{Markup.Escape(pool)}/{Markup.Escape(name)}[/] to {Markup.Escape(path)} ({fileFormat}).");
        });
        return command;
    }

    private static Command ServeCommand(DaemonCommandRunner runner)
    {
        var key = new Argument<string>("volume") { Description = KeyHelp };
        var listen = new Option<string?>("--listen") { Description = "HOST:PORT the daemon listens on for NBD clients (port 0: any free one)." };
        var writable = new Option<bool>("--writable") { Description = "Let NBD clients write (default: read-only)." };
        var stop = new Option<bool>("--stop") { Description = "Stop serving it." };
        var command = new Command("serve", "Serve a volume over NBD from the daemon (qemu-img, qemu-nbd, nbdinfo and other hosts read it; the host's admin only: NBD has no authentication).")
        {
            key, listen, writable, stop,
        };
        runner.SetAction(command, async call =>
        {
            var (pool, name) = Key(call.Get(key));
            if (call.Get(stop))
            {
                await call.Client.StopServingVolumeAsync(pool, name, call.CancellationToken).ConfigureAwait(false);
                return call.Say($"Volume [bold]{Markup.Escape(pool)}/{Markup.Escape(name)}[/] is no longer served.");
            }

            string address = call.Get(listen) ?? throw new UsageException("volume serve: give --listen HOST:PORT (or --stop).");
            var serving = await call.Client.ServeVolumeAsync(pool, name, new ServeVolumeRequest { Listen = address, Writable = call.Get(writable) ? true : null }, call.CancellationToken)
                .ConfigureAwait(false);
            return call.Print(serving, (screen, s) => screen.MarkupLine($"Serving [bold]{Markup.Escape(s.Volume)}[/] {(s.Writable ? "read-write" : "read-only")} at {Markup.Escape(s.Uri)}"));
        });
        return command;
    }

    /// <summary>Runs a transfer of <paramref name="total"/> bytes with a progress bar on stderr when it is a terminal.</summary>
    private static async Task<T> WithProgressAsync<T>(DaemonCall call, string what, long total, Func<Action<long>, Task<T>> transfer)
    {
        if (!call.Environment.ErrorIsTerminal || call.Json)
        {
            return await transfer(_ => { }).ConfigureAwait(false);
        }

        var stderr = HumanOutput.CreateConsole(call.Environment.Error, isTerminal: true);
        return await stderr.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask(Markup.Escape(what), maxValue: Math.Max(1, total));
                var result = await transfer(done => bar.Value = done).ConfigureAwait(false);
                bar.Value = bar.MaxValue;
                return result;
            }).ConfigureAwait(false);
    }
}
