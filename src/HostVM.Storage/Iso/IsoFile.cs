namespace HostVM.Storage.Iso;

/// <summary>One file of an ISO 9660 image: its name as Linux shows it (the Rock Ridge name) and its bytes.</summary>
public sealed record IsoFile(string Name, byte[] Content);
