using System.CommandLine;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm image ...`: upload, list and delete the images VMs are created from.</summary>
public static class ImageCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("image", "Manage the images VMs are created from (a kernel, an optional initrd and disk).")
    {
        ImportCommand(runner),
        CreateCommand(runner),
        runner.ListCommand(
            "List the images.",
            (c, t) => c.ListImagesAsync(t),
            "No images yet: upload one with `hostvm image import NAME --kernel FILE [--initrd FILE] [--disk FILE]`.",
            ["NAME", "PROJECT", "KERNEL", "INITRD", "DISK", "BOOT ARGS", "CREATED"],
            image =>
            [
                Markup.Escape(image.Name),
                HumanOutput.Escape(image.Project),
                HumanOutput.Bytes(image.KernelBytes),
                HumanOutput.Bytes(image.InitrdBytes),
                HumanOutput.Bytes(image.DiskBytes),
                HumanOutput.Escape(image.BootArgs),
                HumanOutput.Time(image.CreatedAt),
            ]),
        ShowCommand(runner),
        runner.DeleteCommand("image", "Delete an image (VMs made from it keep their own disk).", (c, n, t) => c.DeleteImageAsync(n, t)),
    };

    private static Command ImportCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The image's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var kernel = new Option<string?>("--kernel") { Description = "The Linux kernel (a RISC-V Image or ELF).", Required = true };
        var initrd = new Option<string?>("--initrd") { Description = "An initial RAM disk (cpio, optionally compressed)." };
        var disk = new Option<string?>("--disk") { Description = "A raw disk image; every VM gets its own copy." };
        var firmware = new Option<string?>("--firmware") { Description = "M-mode firmware VMs run first (OpenSBI fw_jump.bin), for a kernel that is a boot loader (U-Boot)." };
        var append = new Option<string?>("--append") { Description = "The default kernel command line of VMs made from it (e.g. \"console=ttyS0\")." };
        var description = new Option<string?>("--description") { Description = "A note shown with the image." };
        var project = OptionValues.ProjectOption("image");
        var command = new Command("import", "Upload an image's files to the daemon (progress on stderr when it is a terminal).")
        {
            name, kernel, initrd, disk, firmware, append, description, project,
        };
        runner.SetAction(command, async call =>
        {
            var files = new List<ImageFile>();
            foreach (var (part, option) in new[] { ("kernel", kernel), ("initrd", initrd), ("disk", disk), ("firmware", firmware) })
            {
                if (call.Get(option) is { } path)
                {
                    files.Add(new ImageFile(part, CheckFile($"--{part}", path)));
                }
            }

            var metadata = new ImageMetadata { Name = call.Get(name), Project = call.Get(project), BootArgs = call.Get(append), Description = call.Get(description) };
            var image = call.Environment.ErrorIsTerminal
                ? await UploadWithProgressAsync(call, metadata, files).ConfigureAwait(false)
                : await call.Client.ImportImageAsync(metadata, files, null, call.CancellationToken).ConfigureAwait(false);
            return call.Print(image, (screen, i) => screen.MarkupLine(
                $"Imported image [bold]{Markup.Escape(i.Name)}[/]: kernel {HumanOutput.Bytes(i.KernelBytes)}, initrd {HumanOutput.Bytes(i.InitrdBytes)}, disk {HumanOutput.Bytes(i.DiskBytes)}."));
        });
        return command;
    }

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The image's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var fromVm = new Option<string>("--from-vm") { Description = "A stopped VM: its kernel, initrd and disk (as its guest sees it) become the image, in its project.", Required = true };
        var append = new Option<string?>("--append") { Description = "The default kernel command line of VMs made from it (default: the VM's)." };
        var description = new Option<string?>("--description") { Description = "A note shown with the image." };
        var command = new Command("create", "Make an image (a template) from a stopped VM.") { name, fromVm, append, description };
        runner.SetAction(command, async call =>
        {
            var image = await call.Client.CreateImageFromVmAsync(call.Get(name), call.Get(fromVm), call.Get(append), call.Get(description), call.CancellationToken).ConfigureAwait(false);
            return call.Print(image, (screen, i) => screen.MarkupLine($"Made image [bold]{Markup.Escape(i.Name)}[/] from VM {Markup.Escape(call.Get(fromVm))}: disk {HumanOutput.Bytes(i.DiskBytes)}."));
        });
        return command;
    }

    private static string CheckFile(string option, string path)
    {
        if (Directory.Exists(path))
        {
            throw new UsageException($"{option} {path}: is a directory; give the file.");
        }

        if (!File.Exists(path))
        {
            throw new UsageException($"{option} {path}: no such file.");
        }

        return Path.GetFullPath(path);
    }

    /// <summary>The size of the file itself, also through a symbolic link (FileInfo.Length is the link's).</summary>
    private static long FileLength(string path)
    {
        using var handle = File.OpenHandle(path);
        return RandomAccess.GetLength(handle);
    }

    /// <summary>Uploads with one Spectre progress bar per file, drawn on stderr.</summary>
    private static async Task<DaemonResponse<Image>> UploadWithProgressAsync(DaemonCall call, ImageMetadata metadata, IReadOnlyList<ImageFile> files)
    {
        var stderr = HumanOutput.CreateConsole(call.Environment.Error, isTerminal: true);
        return await stderr.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async context =>
            {
                var bars = files.ToDictionary(f => f, f => context.AddTask(Markup.Escape($"{f.Part} {Path.GetFileName(f.Path)}"), maxValue: Math.Max(1, FileLength(f.Path))));
                var answer = await call.Client.ImportImageAsync(metadata, files, (file, sent) => bars[file].Value = sent, call.CancellationToken).ConfigureAwait(false);
                foreach (var bar in bars.Values)
                {
                    bar.Value = bar.MaxValue;
                }

                return answer;
            }).ConfigureAwait(false);
    }

    private static Command ShowCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The image's name." };
        var command = new Command("show", "Show one image.") { name };
        runner.SetAction(command, async call =>
        {
            var image = await call.Client.GetImageAsync(call.Get(name), call.CancellationToken).ConfigureAwait(false);
            return call.Print(image, (screen, i) => screen.Write(HumanOutput.Fields(
            [
                ("Name", Markup.Escape(i.Name)),
                ("Project", HumanOutput.Escape(i.Project)),
                ("Description", HumanOutput.Escape(i.Description)),
                ("Boot args", HumanOutput.Escape(i.BootArgs)),
                ("Kernel", HumanOutput.Bytes(i.KernelBytes)),
                ("Initrd", HumanOutput.Bytes(i.InitrdBytes)),
                ("Disk", HumanOutput.Bytes(i.DiskBytes)),
                ("Firmware", HumanOutput.Bytes(i.FirmwareBytes)),
                ("Created", HumanOutput.Time(i.CreatedAt)),
            ])));
        });
        return command;
    }
}
