using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Storage;
using HostVM.Vmm;

namespace HostVM.Host.Images;

/// <summary>
/// Images on disk: <c>DataDir/images/NAME/{kernel,initrd,disk.img}</c>. An import is written into a
/// staging directory first and moved into place with the inventory row, so a failed or interrupted
/// import leaves nothing behind.
/// </summary>
public sealed class ImageStore
{
    public const string KernelFile = "kernel";
    public const string InitrdFile = "initrd";
    public const string DiskFile = "disk.img";
    public const string FirmwareFile = "firmware";

    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();

    public ImageStore(HostSettings settings, InventoryStore inventory)
    {
        _settings = settings;
        _inventory = inventory;
        Root = Path.Combine(settings.DataDir, "images");
        Directory.CreateDirectory(Root);
        foreach (var stale in Directory.GetDirectories(Root, ".staging-*"))
        {
            Directory.Delete(stale, recursive: true); // an import the daemon did not finish
        }

        // Moved into place but never recorded (the daemon died between the rename and the row): the import was never
        // acknowledged, and the name is free again, so its files go.
        var recorded = inventory.Images().Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var unrecorded in Directory.GetDirectories(Root).Where(d => !Path.GetFileName(d).StartsWith('.') && !recorded.Contains(Path.GetFileName(d))))
        {
            Directory.Delete(unrecorded, recursive: true);
        }
    }

    public string Root { get; }

    public string FileOf(string image, string file) => Path.Combine(Root, image, file);

    /// <summary>A staging directory for one import; <see cref="Commit"/> or <see cref="Abandon"/> it.</summary>
    public string BeginImport() => Directory.CreateDirectory(Path.Combine(Root, $".staging-{Guid.NewGuid():N}")).FullName;

    /// <summary>
    /// JSON import: copies files that are already on the host, from the import directories (from the
    /// <paramref name="callerProject"/>'s directory in each, for a project's token). Each file is opened once,
    /// safely (<see cref="PathGuard"/>), and copied from that descriptor.
    /// </summary>
    public ImageRecord ImportFromPaths(ImportImageRequest request, string? callerProject)
    {
        ArgumentNullException.ThrowIfNull(request);
        string name = Names.Check(request.Name, "name");
        RequireFree(name);
        using var kernel = PathGuard.Open(request.Kernel ?? string.Empty, _settings.ImportDirs, callerProject, "kernel");
        using var initrd = request.Initrd is null ? null : PathGuard.Open(request.Initrd, _settings.ImportDirs, callerProject, "initrd");
        using var disk = request.Disk is null ? null : PathGuard.Open(request.Disk, _settings.ImportDirs, callerProject, "disk");
        using var firmware = request.Firmware is null ? null : PathGuard.Open(request.Firmware, _settings.ImportDirs, callerProject, "firmware");
        string staging = BeginImport();
        try
        {
            OwnerOnly.CopyFile(kernel, Path.Combine(staging, KernelFile));
            if (initrd is not null)
            {
                OwnerOnly.CopyFile(initrd, Path.Combine(staging, InitrdFile));
            }

            if (disk is not null)
            {
                OwnerOnly.CopyFile(disk, Path.Combine(staging, DiskFile));
            }

            if (firmware is not null)
            {
                OwnerOnly.CopyFile(firmware, Path.Combine(staging, FirmwareFile));
            }

            return Commit(staging, name, request.BootArgs, request.Description, request.Project ?? ProjectRecord.Default);
        }
        catch
        {
            Abandon(staging);
            throw;
        }
    }

    public void RequireFree(string name)
    {
        if (_inventory.Image(name) is not null)
        {
            throw ApiProblem.Conflict($"An image named '{name}' exists; delete it first or choose another name.");
        }
    }

    /// <summary>Moves a complete staging directory into place and records the image.</summary>
    public ImageRecord Commit(string staging, string name, string? bootArgs, string? description, string project)
    {
        if (!File.Exists(Path.Combine(staging, KernelFile)))
        {
            throw ApiProblem.BadRequest("An image needs a kernel.", "kernel");
        }

        long? Size(string file) => File.Exists(Path.Combine(staging, file)) ? new FileInfo(Path.Combine(staging, file)).Length : null;
        var image = new ImageRecord
        {
            Name = name,
            Project = project,
            BootArgs = bootArgs ?? "console=ttyS0",
            Description = description ?? string.Empty,
            KernelBytes = Size(KernelFile)!.Value,
            InitrdBytes = Size(InitrdFile),
            DiskBytes = Size(DiskFile),
            FirmwareBytes = Size(FirmwareFile),
            CreatedAt = DateTimeOffset.UtcNow,
        };
        if (image.KernelBytes == 0)
        {
            throw ApiProblem.BadRequest("The kernel file is empty.", "kernel");
        }

        lock (_lock)
        {
            RequireFree(name);
            string target = Path.Combine(Root, name);
            if (Directory.Exists(target))
            {
                Directory.Delete(target, recursive: true); // files of an image whose row was never written
            }

            // Durable before the row that names them: the files, then the rename into images/.
            FileSync.Tree(staging);
            Directory.Move(staging, target);
            FileSync.Entries(Root);
            try
            {
                _inventory.PutImage(image);
            }
            catch
            {
                Directory.Delete(target, recursive: true);
                throw;
            }
        }

        _inventory.AddEvent(null, "image", $"image {name} imported ({image.KernelBytes + (image.InitrdBytes ?? 0) + (image.DiskBytes ?? 0)} bytes)", project);
        return image;
    }

    public static void Abandon(string staging)
    {
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>
    /// Gives a new VM its own names for the image's kernel and initrd (if the image has one), in the
    /// VM's directory: the VM boots those files from then on, so deleting the image, or another import
    /// under the same name, can never change what the VM boots.
    /// </summary>
    public void LinkBootFiles(ImageRecord image, string kernel, string initrd)
    {
        ArgumentNullException.ThrowIfNull(image);
        FileLink.LinkOrCopy(FileOf(image.Name, KernelFile), kernel);
        if (image.InitrdBytes is not null)
        {
            FileLink.LinkOrCopy(FileOf(image.Name, InitrdFile), initrd);
        }

        if (image.FirmwareBytes is not null)
        {
            FileLink.LinkOrCopy(FileOf(image.Name, FirmwareFile), Path.Combine(Path.GetDirectoryName(kernel)!, FirmwareFile));
        }
    }

    public void Delete(string name)
    {
        ImageRecord image;
        lock (_lock)
        {
            image = _inventory.Image(name) ?? throw ApiProblem.NotFound("image", name);
            // A VM can only be made from its own project's image, so the users are named to the
            // image's owner; any other (made before that rule) is only counted.
            var users = _inventory.Vms().Where(v => v.Image == name).ToList();
            if (users.Count > 0)
            {
                var names = users.Where(v => v.Project == image.Project).Select(v => v.Name).Order(StringComparer.Ordinal).ToList();
                int others = users.Count - names.Count;
                string who = string.Join(", ", names) + (others == 0 ? string.Empty : $"{(names.Count > 0 ? " and " : string.Empty)}{others} VM(s) of other projects");
                throw ApiProblem.Conflict($"Image '{name}' is used by {who}: delete those VMs first.");
            }

            _inventory.DeleteImage(name);
            string dir = Path.Combine(Root, name);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        _inventory.AddEvent(null, "image", $"image {name} deleted", image.Project);
    }
}
