namespace HostVM.Cli.Api;

/// <summary>A file of an image upload: the form part it goes in (kernel, initrd, disk) and the local file.</summary>
public sealed record ImageFile(string Part, string Path);
