import factory
from django.contrib.auth.models import Group

from omni.models import User
from omni.roles import Role

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    """A member of staff. `role=Role.MANAGER` puts them in that group."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = "Sam"
    password = factory.django.Password(PASSWORD)
    home_location = None

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            roles = extracted if isinstance(extracted, (list, tuple)) else [extracted]
            for role in roles:
                self.groups.add(Group.objects.get(name=Role(role).value))
